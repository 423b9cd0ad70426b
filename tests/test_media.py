from __future__ import annotations

from pathlib import Path

import pytest
from media_factory import png_bomb, truncate, write_jpeg, write_video

from vigil.hashing import MediaError, MediaLimits, hash_file, hash_paths
from vigil.hashing.media import Media


def test_jpeg_hashes_to_pdq_md5_sha256(tmp_path: Path) -> None:
    result = hash_file(write_jpeg(tmp_path / "a.jpg", seed=1))
    assert result.ok and result.kind == "image"
    types = {s.signal_type: s for s in result.signals}
    assert set(types) >= {"pdq", "md5", "sha256"}
    assert len(types["pdq"].value) == 64 and (types["pdq"].quality or 0) >= 50


def test_a_video_is_sniffed_as_video(tmp_path: Path) -> None:
    assert Media(write_video(tmp_path / "v.mp4", seed=2)).kind == "video"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: (d / "empty.jpg").write_bytes(b"") and d / "empty.jpg", "empty"),
        (lambda d: (d / "notes.txt").write_text("just words\n") and d / "notes.txt", "unsupported"),
        (lambda d: truncate(write_jpeg(d / "x.jpg", 3), d / "cut.jpg", 0.3), "corrupt"),
        (lambda d: png_bomb(d / "bomb.png"), "bomb"),
        (lambda d: d / "does-not-exist.jpg", "unreadable"),
    ],
    ids=["zero-byte", "text", "truncated-jpeg", "decompression-bomb", "missing"],
)
def test_bad_input_gets_a_clear_reason(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
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
