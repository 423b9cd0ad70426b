"""vPDQ hashing of real (generated) videos and matching through the frame index."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq, vpdq_to_json

from vigil.hashing.index.vpdq import VpdqIndex
from vigil.hashing.media import Media, MediaError
from vigil.hashing.signals import get_signal_type
from vigil.hashing.signals.vpdq import VpdqSignal, matchable_frames

FPS = 10


def scene(seed: int, second: int, size: int = 160) -> np.ndarray:
    """A textured picture that changes every second and drifts within it: each PDQ frame sees
    different content, as in real footage."""
    rng = np.random.default_rng(seed * 1000 + second)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return np.kron(coarse, np.ones((size // 8, size // 8, 1), dtype=np.uint8))


def write_video(path: Path, seed: int, seconds: int, *, start: int = 0, crf: int = 23) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = stream.height = 160
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for second in range(start, start + seconds):
            picture = scene(seed, second)
            for step in range(FPS):
                frame = np.roll(picture, step, axis=1)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def vpdq_of(path: Path) -> str:
    (signal,) = VpdqSignal().hash_media(Media(path))
    return signal.value


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        "original": vpdq_of(write_video(folder / "original.mp4", seed=1, seconds=20)),
        # Seconds 5-15 only, re-encoded at a much lower quality.
        "clip": vpdq_of(write_video(folder / "clip.mp4", seed=1, seconds=10, start=5, crf=40)),
        "unrelated": vpdq_of(write_video(folder / "other.mp4", seed=2, seconds=20)),
    }


def test_hash_is_threatexchange_format(videos: dict[str, str]) -> None:
    features = json_to_vpdq(videos["original"])
    assert 18 <= len(features) <= 21  # one frame per second
    assert vpdq_to_json(features) == videos["original"]
    assert get_signal_type("vpdq").validate(videos["original"]) == videos["original"]


def test_clip_matches_and_unrelated_does_not(videos: dict[str, str]) -> None:
    index = VpdqIndex()
    index.add([7, 8], [videos["original"], videos["unrelated"]])
    hits = index.query([videos["clip"], videos["unrelated"]], 31)
    clip_hits = {hit.signal_id: hit for hit in hits[0]}
    assert clip_hits[7].query_share is not None and clip_hits[7].query_share >= 0.8
    assert clip_hits[7].index_share is not None and 0.3 <= clip_hits[7].index_share <= 0.7
    assert 8 not in clip_hits or (clip_hits[8].query_share or 0) < 0.8
    unrelated = {hit.signal_id: hit for hit in hits[1]}
    assert unrelated[8].query_share == 1.0
    assert 7 not in unrelated or (unrelated[7].query_share or 0) < 0.8


def test_signal_distance_agrees_with_index(videos: dict[str, str]) -> None:
    signal = VpdqSignal()
    assert signal.distance(videos["clip"], videos["original"]) <= 0.2
    assert signal.distance(videos["unrelated"], videos["original"]) > 0.2


def test_low_quality_frames_are_not_matched() -> None:
    frames = [f"{'0' * 63}{i},{q},{i}.0" for i, q in enumerate((10, 90, 90))]
    frames.append(frames[1])  # a repeated frame counts once
    assert matchable_frames(json.dumps(frames)) == ["0" * 63 + "1", "0" * 63 + "2"]


def test_truncated_video_is_refused(tmp_path: Path) -> None:
    path = write_video(tmp_path / "whole.mp4", seed=3, seconds=3)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(MediaError) as refused:
        VpdqSignal().hash_media(Media(truncated))
    assert refused.value.reason == "corrupt"


@pytest.mark.parametrize("zeroed_from", [0.0, 0.5], ids=["all-frames", "second-half"])
def test_video_with_undecodable_frames_is_refused(tmp_path: Path, zeroed_from: float) -> None:
    """The container is intact but frame data is zeroed: vpdq's decoder aborts its process on
    this, so it must run in a child and the damage must come back as a clear error."""
    data = bytearray(write_video(tmp_path / "whole.mp4", seed=3, seconds=3).read_bytes())
    box = data.find(b"mdat")
    size = int.from_bytes(data[box - 4 : box], "big")
    start = box + 4 + int((size - 8) * zeroed_from)
    data[start : box - 4 + size] = bytes(box - 4 + size - start)
    zeroed = tmp_path / "zeroed.mp4"
    zeroed.write_bytes(bytes(data))
    with pytest.raises(MediaError) as refused:
        VpdqSignal().hash_media(Media(zeroed))
    assert refused.value.reason == "corrupt"
