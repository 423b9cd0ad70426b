"""Face models on real LFW photos: dlib's detector and embedder, ArcFace alignment, ONNX models
built in the test (run by ONNX Runtime), the engine and its model cards, and safe decoding of
uploaded images."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import in_ci
from faces_onnx import LANDMARK_FRACTIONS, build_detector, build_embedder
from vigil.faces.align import ARCFACE_TEMPLATE, align_arcface
from vigil.faces.engine import (
    FaceEngine,
    UnreadableImage,
    decode_image,
    read_operating_point,
)
from vigil.faces.models import FaceModelError
from vigil.faces.models.onnx import OnnxDetector, OnnxEmbedder
from vigil.faces.settings import FacesSettings
from vigil.faces.types import FaceBox


def lfw_path(shared_data: Path, name: str, number: int) -> Path:
    return shared_data / "faces" / "lfw" / "images" / name / f"{name}_{number:04d}.jpg"


def lfw(shared_data: Path, name: str, number: int) -> np.ndarray:
    return np.asarray(Image.open(lfw_path(shared_data, name, number)).convert("RGB"))


def lfw_pairs(shared_data: Path, same: bool, count: int) -> list[tuple[Path, Path]]:
    """The first ``count`` same-person (or different-person) pairs of LFW's pairs.txt."""
    lines = (shared_data / "faces" / "lfw" / "pairs.txt").read_text().splitlines()[1:]
    pairs = []
    for fields in (line.split("\t") for line in lines):
        if len(fields) == 3 and same:
            name, first, second = fields
            pairs.append(
                (lfw_path(shared_data, name, int(first)), lfw_path(shared_data, name, int(second)))
            )
        elif len(fields) == 4 and not same:
            pairs.append(
                (
                    lfw_path(shared_data, fields[0], int(fields[1])),
                    lfw_path(shared_data, fields[2], int(fields[3])),
                )
            )
    return pairs[:count]


def require_dlib() -> None:
    """dlib is vigil's `faces` extra: skip without it locally, fail in CI."""
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("the faces extra (dlib) is required in CI")
        pytest.skip("the faces extra (dlib) is not installed")


@pytest.fixture(scope="module")
def dlib_models() -> tuple[Any, Any]:
    require_dlib()
    from vigil.faces.models.dlib import DlibDetector, DlibEmbedder

    return DlibDetector(upsample=1), DlibEmbedder()


def only_face(detector: Any, rgb: np.ndarray) -> FaceBox:
    faces = detector.detect(rgb)
    assert len(faces) == 1, faces
    face: FaceBox = faces[0]
    return face


# --- dlib -------------------------------------------------------------------------------------


def test_dlib_finds_the_face_of_an_lfw_photo_with_sane_landmarks(
    shared_data: Path, dlib_models: tuple[Any, Any]
) -> None:
    detector, _ = dlib_models
    face = only_face(detector, lfw(shared_data, "Colin_Powell", 1))
    assert detector.name == "dlib-hog"
    # LFW photos are centred on the face.
    assert face.left < 125 < face.right and face.top < 125 < face.bottom
    assert 60 < face.width < 200 and face.score > 0
    assert face.landmarks is not None and face.landmarks.shape == (5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0]
    assert mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    eye_distance = np.hypot(*(right_eye - left_eye))
    assert 0.2 * face.width < eye_distance < 0.6 * face.width
    inside = (face.landmarks >= [face.left, face.top]) & (
        face.landmarks <= [face.right, face.bottom]
    )
    assert inside.all()


def test_estimated_nose_and_mouth_agree_with_dlibs_68_point_model(
    shared_data: Path, dlib_models: tuple[Any, Any]
) -> None:
    """The documented estimate, checked against the 68-point model on photos it was not fitted
    on (the fit used a random 800; these are the 30 first of the pairs list)."""
    import dlib
    import face_recognition_models

    detector, _ = dlib_models
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    errors = []
    for path, _ in lfw_pairs(shared_data, same=True, count=30):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        faces = detector.detect(rgb)
        if len(faces) != 1:
            continue
        face = faces[0]
        rect = dlib.rectangle(face.left, face.top, face.right - 1, face.bottom - 1)
        points = np.array([(p.x, p.y) for p in predictor(rgb, rect).parts()], dtype=np.float32)
        truth = np.array(
            [points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]]
        )
        assert face.landmarks is not None
        eye_distance = np.hypot(*(truth[1] - truth[0]))
        errors.append(np.hypot(*(face.landmarks - truth).T) / eye_distance)
    assert len(errors) >= 25
    mean_error = np.mean(errors, axis=0)
    assert (mean_error[:2] < 0.06).all(), mean_error
    assert (mean_error[2:] < 0.2).all(), mean_error


def test_same_person_scores_higher_than_different_people(
    shared_data: Path, dlib_models: tuple[Any, Any]
) -> None:
    detector, embedder = dlib_models

    def similarity(first: Path, second: Path) -> float:
        templates = []
        for path in (first, second):
            rgb = np.asarray(Image.open(path).convert("RGB"))
            largest = max(detector.detect(rgb), key=lambda face: face.width)
            templates.append(embedder.embed(rgb, [largest])[0])
        return float(templates[0] @ templates[1])

    genuine = [similarity(*pair) for pair in lfw_pairs(shared_data, same=True, count=6)]
    impostor = [similarity(*pair) for pair in lfw_pairs(shared_data, same=False, count=6)]
    # Area under the ROC curve of these 36 genuine-impostor comparisons.
    auc = np.mean([g > i for g in genuine for i in impostor])
    assert auc > 0.9, (genuine, impostor)
    assert np.mean(genuine) > np.mean(impostor)


def test_dlib_templates_are_unit_length_deterministic_and_batched(
    shared_data: Path, dlib_models: tuple[Any, Any]
) -> None:
    detector, embedder = dlib_models
    pair = np.hstack([lfw(shared_data, "Colin_Powell", 1), lfw(shared_data, "Donald_Rumsfeld", 1)])
    faces = sorted(detector.detect(pair), key=lambda face: face.left)
    assert len(faces) == 2
    together = embedder.embed(pair, faces)
    assert together.dtype == np.float32 and together.shape == (2, embedder.dimension) == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([embedder.embed(pair, [face]) for face in faces])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert together[0] @ together[1] < 0.99
    assert embedder.embed(pair, []).shape == (0, 128)


def test_dlib_boxes_are_clipped_to_the_image(
    shared_data: Path, dlib_models: tuple[Any, Any]
) -> None:
    detector, _ = dlib_models
    # The face runs off the left and top edges.
    cut = np.ascontiguousarray(lfw(shared_data, "Colin_Powell", 1)[95:, 80:])
    faces = detector.detect(cut)
    assert faces
    for face in faces:
        assert 0 <= face.left < face.right <= cut.shape[1]
        assert 0 <= face.top < face.bottom <= cut.shape[0]


def test_dlib_finds_no_face_in_a_landscape(shared_data: Path, dlib_models: tuple[Any, Any]) -> None:
    detector, _ = dlib_models
    landscape = np.asarray(Image.open(shared_data / "images" / "kodak24" / "13.png").convert("RGB"))
    assert detector.detect(landscape) == []


def test_dlib_refuses_what_is_not_an_rgb_image(dlib_models: tuple[Any, Any]) -> None:
    detector, embedder = dlib_models
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((50, 50), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        embedder.embed(np.zeros((50, 50, 3), dtype=np.float32), [])
    with pytest.raises(ValueError, match="upsample"):
        type(detector)(upsample=3)


# --- alignment --------------------------------------------------------------------------------


def test_alignment_takes_the_landmarks_onto_the_arcface_template() -> None:
    """Five dots placed by a known rotation, scale and shift of the template land back on it."""
    angle, scale, shift = np.deg2rad(12), 1.7, np.array([40.0, 25.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = ARCFACE_TEMPLATE @ rotation.T + shift
    image = np.zeros((300, 320, 3), dtype=np.uint8)
    for x, y in landmarks:
        cv2.circle(image, (round(x), round(y)), 3, (255, 255, 255), -1)
    aligned = align_arcface(image, landmarks)
    assert aligned.shape == (112, 112, 3)
    count, _, _, centroids = cv2.connectedComponentsWithStats(
        (aligned[:, :, 0] > 100).astype(np.uint8)
    )
    assert count == 6  # the background and five dots
    # The template's five x positions all differ: sorting by x pairs the dots up.
    found = centroids[1:][np.argsort(centroids[1:, 0])]
    wanted = ARCFACE_TEMPLATE[np.argsort(ARCFACE_TEMPLATE[:, 0])]
    np.testing.assert_allclose(found, wanted, atol=1.0)
    assert align_arcface(image, landmarks, size=224).shape == (224, 224, 3)


def test_alignment_refuses_bad_landmarks() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="five"):
        align_arcface(image, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="five"):
        align_arcface(image, np.full((5, 2), np.nan))


# --- ONNX -------------------------------------------------------------------------------------


def bright_rectangle(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    image = np.full((height, width, 3), 30, dtype=np.uint8)
    left, top, right, bottom = box
    image[top:bottom, left:right] = 230
    return image


@pytest.mark.parametrize(
    ("size", "box"), [((500, 300), (310, 40, 410, 190)), ((200, 400), (20, 150, 90, 260))]
)
def test_onnx_detector_maps_letterboxed_boxes_back_to_the_image(
    tmp_path: Path, size: tuple[int, int], box: tuple[int, int, int, int]
) -> None:
    detector = OnnxDetector(build_detector(tmp_path / "detector.onnx", width=160, height=120))
    assert detector.name.startswith("onnx-detector-")
    width, height = size
    faces = detector.detect(bright_rectangle(width, height, box))
    # The 2-px-shifted copy is suppressed by overlap, the 0.3 decoy by the score threshold.
    assert len(faces) == 1
    face = faces[0]
    image_pixels_per_input_pixel = 1 / min(160 / width, 120 / height)
    tolerance = image_pixels_per_input_pixel + 1
    np.testing.assert_allclose([face.left, face.top, face.right, face.bottom], box, atol=tolerance)
    assert face.score == pytest.approx(230 / 255, abs=0.01)
    assert face.landmarks is not None
    left, top, right, bottom = box
    expected = np.array([left, top]) + LANDMARK_FRACTIONS * [right - left, bottom - top]
    np.testing.assert_allclose(face.landmarks, expected, atol=tolerance)


def test_onnx_detector_thresholds_suppression_and_landmarks_are_real(tmp_path: Path) -> None:
    image = bright_rectangle(320, 240, (100, 60, 200, 180))
    path = build_detector(tmp_path / "detector.onnx", width=160, height=120)
    assert len(OnnxDetector(path, overlap_threshold=1.0).detect(image)) == 2
    everything = OnnxDetector(path, score_threshold=0.2, overlap_threshold=1.0).detect(image)
    assert [round(face.score, 2) for face in everything] == [0.9, 0.81, 0.3]
    assert (everything[2].left, everything[2].top, everything[2].right, everything[2].bottom) == (
        0,
        0,
        8,
        8,
    )
    assert OnnxDetector(path).detect(np.full((240, 320, 3), 60, dtype=np.uint8)) == []
    plain = OnnxDetector(build_detector(tmp_path / "plain.onnx", landmarks=False))
    faces = plain.detect(image)
    assert len(faces) == 1 and faces[0].landmarks is None


def test_onnx_embedder_aligns_and_embeds_lfw_faces(
    shared_data: Path, tmp_path: Path, dlib_models: tuple[Any, Any]
) -> None:
    detector, _ = dlib_models
    embedder = OnnxEmbedder(build_embedder(tmp_path / "embedder.onnx", dim=64))
    assert embedder.dimension == 64 and embedder.name.startswith("onnx-embedder-")
    pair = np.hstack([lfw(shared_data, "Colin_Powell", 1), lfw(shared_data, "Donald_Rumsfeld", 1)])
    faces = sorted(detector.detect(pair), key=lambda face: face.left)
    templates = embedder.embed(pair, faces)
    assert templates.shape == (2, 64) and templates.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(templates, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(pair, faces), templates)
    assert templates[0] @ templates[1] < 0.999
    # A model fixed at batch 1 runs face by face; a named template length is read from a run.
    single = OnnxEmbedder(
        build_embedder(tmp_path / "single.onnx", dim=64, batch=1, open_dimension=True)
    )
    assert single.dimension == 64
    np.testing.assert_allclose(single.embed(pair, faces), templates, atol=1e-5)
    assert embedder.embed(pair, []).shape == (0, 64)


def test_onnx_embedder_needs_landmarks(tmp_path: Path) -> None:
    embedder = OnnxEmbedder(build_embedder(tmp_path / "embedder.onnx"))
    faceless = FaceBox(10, 10, 60, 60, 1.0)
    with pytest.raises(ValueError, match="landmarks"):
        embedder.embed(np.zeros((100, 100, 3), dtype=np.uint8), [faceless])


def test_onnx_models_are_checked_when_loaded(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf")
    with pytest.raises(FaceModelError, match="not a loadable ONNX model"):
        OnnxEmbedder(garbage)
    with pytest.raises(FaceModelError, match="not found"):
        OnnxDetector(tmp_path / "missing.onnx")
    with pytest.raises(FaceModelError, match="fixed"):
        OnnxDetector(build_embedder(tmp_path / "dynamic_batch.onnx"))
    with pytest.raises(FaceModelError, match="'boxes'"):
        OnnxDetector(build_embedder(tmp_path / "single.onnx", batch=1))
    with pytest.raises(FaceModelError, match="112"):
        OnnxEmbedder(build_detector(tmp_path / "detector.onnx"))


def test_onnx_model_names_change_with_the_weights(tmp_path: Path) -> None:
    def embedder(folder: str, dim: int) -> OnnxEmbedder:
        (tmp_path / folder).mkdir()
        return OnnxEmbedder(build_embedder(tmp_path / folder / "embedder.onnx", dim=dim))

    small, large, again = embedder("small", 32), embedder("large", 64), embedder("again", 32)
    assert small.name != large.name
    assert small.name == again.name


# --- engine and model cards -------------------------------------------------------------------


def faces_settings(tmp_path: Path, **values: Any) -> FacesSettings:
    return FacesSettings(home=tmp_path / "home", **values)


def test_engine_from_settings_with_a_threshold_runs_dlib(
    shared_data: Path, tmp_path: Path, dlib_models: tuple[Any, Any]
) -> None:
    engine = FaceEngine.from_settings(
        faces_settings(tmp_path, faces_threshold=0.93), cards=tmp_path
    )
    assert engine.model == "dlib-resnet-v1"
    assert engine.operating_point.threshold == 0.93
    assert engine.operating_point.source == "VIGIL_FACES_THRESHOLD"
    assert engine.operating_point.false_match_rate is None
    faces = engine.faces(lfw(shared_data, "Colin_Powell", 1))
    assert len(faces) == 1
    assert faces[0].embedding.shape == (128,)
    assert 0 < faces[0].quality <= 1


def test_engine_reads_the_threshold_from_the_model_card(
    tmp_path: Path, dlib_models: tuple[Any, Any]
) -> None:
    card = {
        "model": "dlib-resnet-v1",
        "operating_point": {
            "threshold": 0.941,
            "false_match_rate": 0.001,
            "false_non_match_rate": 0.03,
        },
        "dataset": "lfw",
    }
    (tmp_path / "dlib-resnet-v1.json").write_text(json.dumps(card))
    point = read_operating_point("dlib-resnet-v1", cards=tmp_path)
    assert point is not None
    assert (point.threshold, point.false_match_rate, point.false_non_match_rate) == (
        0.941,
        0.001,
        0.03,
    )
    assert "dlib-resnet-v1.json" in point.source
    engine = FaceEngine.from_settings(faces_settings(tmp_path), cards=tmp_path)
    assert engine.operating_point == point
    # The setting overrides the card.
    engine = FaceEngine.from_settings(faces_settings(tmp_path, faces_threshold=0.9), cards=tmp_path)
    assert engine.operating_point.threshold == 0.9


def test_engine_without_a_threshold_says_how_to_get_one(
    tmp_path: Path, dlib_models: tuple[Any, Any]
) -> None:
    assert read_operating_point("dlib-resnet-v1", cards=tmp_path) is None
    with pytest.raises(FaceModelError, match=r"vigil faces eval.*VIGIL_FACES_THRESHOLD"):
        FaceEngine.from_settings(faces_settings(tmp_path), cards=tmp_path)


@pytest.mark.parametrize(
    "card",
    [
        "{not json",
        json.dumps({"model": "dlib-resnet-v1", "operating_point": {"threshold": 3}}),
        json.dumps(
            {
                "model": "another-model",
                "operating_point": {
                    "threshold": 0.5,
                    "false_match_rate": 0.1,
                    "false_non_match_rate": 0.1,
                },
            }
        ),
    ],
)
def test_a_malformed_model_card_is_a_clear_error(tmp_path: Path, card: str) -> None:
    (tmp_path / "dlib-resnet-v1.json").write_text(card)
    with pytest.raises(FaceModelError, match="model card"):
        read_operating_point("dlib-resnet-v1", cards=tmp_path)


def test_engine_runs_configured_onnx_models(tmp_path: Path) -> None:
    settings = faces_settings(
        tmp_path,
        faces_detector="onnx",
        faces_detector_onnx=build_detector(tmp_path / "detector.onnx"),
        faces_embedder="onnx",
        faces_embedder_onnx=build_embedder(tmp_path / "embedder.onnx", dim=32),
        faces_threshold=0.5,
    )
    engine = FaceEngine.from_settings(settings, cards=tmp_path)
    assert engine.model.startswith("onnx-embedder-")
    faces = engine.faces(bright_rectangle(320, 240, (100, 60, 200, 180)))
    assert len(faces) == 1 and faces[0].embedding.shape == (32,)
    with pytest.raises(FaceModelError, match="VIGIL_FACES_EMBEDDER_ONNX"):
        FaceEngine.from_settings(
            faces_settings(tmp_path, faces_embedder="onnx", faces_threshold=0.5)
        )


# --- decoding uploads -------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds none: a decompression bomb's
    header costs nothing to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_decode_image_reads_a_jpeg(shared_data: Path) -> None:
    data = lfw_path(shared_data, "Colin_Powell", 1).read_bytes()
    rgb = decode_image(data, max_pixels=1_000_000)
    assert rgb.shape == (250, 250, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, lfw(shared_data, "Colin_Powell", 1))


def test_decode_image_applies_the_exif_orientation() -> None:
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    assert decode_image(buffer.getvalue(), max_pixels=10_000).shape == (40, 20, 3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda jpeg: b"", "empty"),
        (lambda jpeg: b"definitely not an image" * 10, "not an image"),
        (lambda jpeg: jpeg[: len(jpeg) // 2], "damaged or truncated"),
        (lambda jpeg: png_header(9_000, 9_000), "over the limit"),
        (lambda jpeg: png_header(40_000, 40_000), "too large"),
    ],
)
def test_decode_image_refuses_garbage_truncation_and_bombs(
    shared_data: Path, make: Any, message: str
) -> None:
    jpeg = lfw_path(shared_data, "Colin_Powell", 1).read_bytes()
    with pytest.raises(UnreadableImage, match=message):
        decode_image(make(jpeg), max_pixels=64_000_000)
