"""ORB keypoints and geometric verification on real photos: a cropped, rotated copy fits its
original; another photo of the same person, as close by the embedding, does not."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import require_embedding
from vigil.config import Settings
from vigil.hashing.signals.keypoints import (
    MAX_KEYPOINTS,
    FitRule,
    Keypoints,
    KeypointsSignal,
    decode,
    detect,
    encode,
    verify,
)

DEFAULTS = Settings()
ONE_KEYPOINT = encode(Keypoints(8, 8, np.zeros((1, 2), "f4"), np.zeros((1, 32), "u1")))


@pytest.fixture(autouse=True)
def _opencv() -> None:
    require_embedding()


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _face(shared_data: Path, name: str) -> np.ndarray:
    (path,) = (shared_data / "faces" / "lfw" / "images").rglob(f"{name}.jpg")
    return _rgb(path)


def _passes(query: np.ndarray, bank: np.ndarray) -> bool:
    return verify(detect(query), detect(bank), DEFAULTS.verify_min_inliers).passes(
        FitRule.of(DEFAULTS)
    )


def test_value_round_trips_and_is_capped(shared_data: Path) -> None:
    keypoints = detect(_rgb(shared_data / "images" / "kodak24" / "05.png"))
    assert len(keypoints.points) == MAX_KEYPOINTS
    assert max(keypoints.width, keypoints.height) == 512
    value = encode(keypoints)
    decoded = decode(value)
    assert np.array_equal(decoded.descriptors, keypoints.descriptors)
    assert np.abs(decoded.points - keypoints.points).max() < 0.5  # float16 positions
    assert KeypointsSignal().validate(value) == value


@pytest.mark.parametrize("value", ["not base64!", "", ONE_KEYPOINT[:-8]])
def test_malformed_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        decode(value)


def test_a_flat_image_has_no_keypoints_and_verifies_nothing(shared_data: Path) -> None:
    flat = detect(np.full((300, 400, 3), 128, np.uint8))
    assert len(flat.points) == 0
    assert verify(flat, detect(_rgb(shared_data / "images" / "kodak24" / "05.png"))).inliers == 0


def test_cropped_and_rotated_copy_verifies(shared_data: Path) -> None:
    with Image.open(shared_data / "images" / "kodak24" / "19.png") as opened:
        photo = opened.convert("RGB")
    copy = photo.crop((0, 0, round(0.9 * photo.width), round(0.9 * photo.height))).rotate(4)
    assert _passes(np.asarray(copy), np.asarray(photo))
    signal_type = KeypointsSignal()
    near = signal_type.distance(encode(detect(np.asarray(copy))), encode(detect(np.asarray(photo))))
    assert near < 1 / (1 + DEFAULTS.verify_min_inliers)


def test_other_photos_of_the_same_scene_do_not_verify(shared_data: Path) -> None:
    """Two shots of one press event: the embedding puts them within 0.06, nothing is copied."""
    from vigil.hashing.signals.embedding import EmbeddingSignal, embedding_signal

    first, second = _face(shared_data, "Colin_Powell_0177"), _face(shared_data, "Colin_Powell_0180")
    embedding = EmbeddingSignal()
    close = embedding.distance(embedding_signal(first).value, embedding_signal(second).value)
    assert close < DEFAULTS.embedding_candidate_distance
    assert not _passes(first, second) and not _passes(second, first)
    kodak = shared_data / "images" / "kodak24"
    assert not _passes(_rgb(kodak / "02.png"), _rgb(kodak / "19.png"))


def test_consecutive_shots_share_features_but_do_not_fit_exactly(shared_data: Path) -> None:
    """Two press shots a moment apart pass the inlier and coverage tests; the residual (she
    moved) is what tells them from a copy, whose features fit within ORB's sub-pixel noise."""
    first = _face(shared_data, "Britney_Spears_0001")
    second = _face(shared_data, "Britney_Spears_0002")
    shots = verify(detect(second), detect(first), DEFAULTS.verify_min_inliers)
    assert shots.inliers >= DEFAULTS.verify_min_inliers
    assert shots.coverage >= DEFAULTS.verify_min_coverage
    assert shots.residual > DEFAULTS.verify_max_residual
    assert not shots.passes(FitRule.of(DEFAULTS))
    buffer = io.BytesIO()
    Image.fromarray(first).resize((200, 200)).save(buffer, "JPEG", quality=40)
    copy = np.asarray(Image.open(buffer).convert("RGB"))
    fit = verify(detect(copy), detect(first), DEFAULTS.verify_min_inliers)
    assert fit.passes(FitRule.of(DEFAULTS)), fit
