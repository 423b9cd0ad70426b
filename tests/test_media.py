from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vigil.hashing import MediaError, MediaLimits, hash_file, hash_paths
from vigil.hashing.media import Media

from media_factory import png_bomb, truncate, write_jpeg, write_video


def test_jpeg_hashes_to_pdq_md5_sha256(tmp_path: Path) -> None:
    result = hash_file(write_jpeg(tmp_path / "a.jpg", seed=1))
    assert result.ok and result.kind == "image"
    types = {s.signal_type: s for s in result.signals}
    assert set(types) >= {"pdq", "md5", "sha256"}
    assert len(types["pdq"].value) == 64 and (types["pdq"].quality or 0) >= 50


def test_a_video_is_sniffed_as_video(tmp_path: Path) -> None:
    assert Media(write_video(tmp_path / "v.mp4", seed=2)).kind == "video"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zero-byte": (lambda d: _write(d / "empty.jpg", b""), "empty"),
    "text": (lambda d: _write(d / "notes.txt", b"just words\n"), "unsupported"),
    "truncated-jpeg": (
        lambda d: truncate(write_jpeg(d / "x.jpg", 3), d / "cut.jpg", 0.3),
        "corrupt",
    ),
    "truncated-video": (
        lambda d: truncate(write_video(d / "v.mp4", 3), d / "cut.mp4", 0.4),
        "corrupt",
    ),
    "decompression-bomb": (lambda d: png_bomb(d / "bomb.png"), "bomb"),
    "missing": (lambda d: d / "does-not-exist.jpg", "unreadable"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_clear_reason(tmp_path: Path, case: str) -> None:
    make, reason = BAD_INPUTS[case]
    result = hash_file(make(tmp_path))
    assert not result.ok and result.signals == []
    assert isinstance(result.error, MediaError) and result.error.reason == reason
    assert result.as_json()["error"] == {"reason": reason, "message": result.error.args[0]}


def test_oversize_file_is_refused_before_decoding(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "big.jpg", seed=4)
    result = hash_file(path, limits=MediaLimits(max_bytes=path.stat().st_size - 1))
    assert result.error is not None and result.error.reason == "too_large"


def test_folder_scan_continues_past_bad_files(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "1.jpg", seed=5)
    (tmp_path / "2.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    (tmp_path / "sub").mkdir()
    write_jpeg(tmp_path / "sub" / "3.jpg", seed=6)
    results = list(hash_paths([tmp_path]))
    assert [Path(r.path).name for r in results] == ["1.jpg", "2.jpg", "3.jpg"]
    assert [r.ok for r in results] == [True, False, True]
