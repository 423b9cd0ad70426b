"""Image attachments: a meme's caption read by OCR from a Telegram-style export, a bank match of
an attached image, and every way an attachment is refused with a reason instead of an exception
(paths out of the export, oversize, corrupt, bombs, videos, URLs not allowed)."""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path

import pytest

from meme_support import meme
from test_api_hma import file_server
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.text.attachments import AttachmentFinding, AttachmentReader
from vigil.text.posts import Attachment, Post

from media_factory import png_bomb, truncate, write_jpeg, write_video

CAPTION = ("SUPPORT THE MUJAHIDEEN", "Strike where they gather")


@pytest.fixture(scope="module")
def export(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Telegram-export-like folder: result.json's photos live in photos/."""
    folder = tmp_path_factory.mktemp("export")
    (folder / "photos").mkdir()
    meme(shared_data / "images" / "kodak24" / "14.png", CAPTION).save(
        folder / "photos" / "meme.jpg", "JPEG", quality=90
    )
    with open(shared_data / "images" / "kodak24" / "20.png", "rb") as source:
        (folder / "photos" / "plain.png").write_bytes(source.read())
    return folder


def _post(*attachments: Attachment) -> Post:
    return Post(id="1", platform="telegram", text="look", attachments=attachments)


def _read(reader: AttachmentReader, **where: str) -> AttachmentFinding:
    (finding,) = reader.read(_post(Attachment(**where)))
    return finding


def test_the_caption_of_a_meme_in_an_export_is_read(export: Path) -> None:
    reader = AttachmentReader(known=None, base_dir=export)
    finding = _read(reader, path="photos/meme.jpg")
    assert finding.error is None and finding.matches == []
    assert "Strike where they gather" in finding.text.splitlines()
    assert "MUJAHIDEEN" in finding.text


def test_an_attached_image_matches_the_bank_it_was_added_to(
    settings: Settings, export: Path
) -> None:
    known = KnownContent(settings)
    try:
        known.banks.create("propaganda")
        _, entry_id = known.add_file("propaganda", export / "photos" / "meme.jpg", labels=["isis"])
        reader = AttachmentReader(known=known, base_dir=export, ocr=False)
        banked, plain = reader.read(
            _post(Attachment(path="photos/meme.jpg"), Attachment(path="photos/plain.png"))
        )
    finally:
        known.close()
    assert banked.error is None and banked.text == ""
    assert [(m.bank, m.entry_id, m.labels) for m in banked.matches] == [
        ("propaganda", entry_id, ["isis"])
    ]
    assert plain.error is None and plain.matches == []


def test_paths_out_of_the_export_are_refused(export: Path, tmp_path: Path) -> None:
    outside = write_jpeg(tmp_path / "outside.jpg", seed=3)
    link = export / "photos" / "escape.jpg"
    if not link.is_symlink():
        link.symlink_to(outside)
    reader = AttachmentReader(known=None, base_dir=export)
    refusals = {
        raw: _read(reader, path=raw).error
        for raw in (
            "../outside.jpg",
            "photos/../../outside.jpg",
            str(outside),
            "~/outside.jpg",
            "photos/escape.jpg",
            "photos/missing.jpg",
            "photos",
            "photos/\x00.jpg",
        )
    }
    assert all(refusals.values()), refusals
    assert "leaves the export" in str(refusals["../outside.jpg"])
    assert "absolute path" in str(refusals[str(outside)])
    assert "leads out of the export" in str(refusals["photos/escape.jpg"])
    assert "not a file" in str(refusals["photos/missing.jpg"])
    no_folder = AttachmentReader(known=None, base_dir=None)
    assert "no export folder" in str(_read(no_folder, path="photos/meme.jpg").error)


def test_broken_and_hostile_images_give_reasons(export: Path, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    truncate(export / "photos" / "meme.jpg", files / "truncated.jpg")
    png_bomb(files / "bomb.png")
    (files / "notes.jpg").write_bytes(b"these are not pixels\n" * 10)
    (files / "empty.png").write_bytes(b"")
    write_video(files / "clip.mp4", seed=1, seconds=1.0)
    reader = AttachmentReader(known=None, base_dir=files)
    reasons = {
        name: str(_read(reader, path=name).error)
        for name in ("truncated.jpg", "bomb.png", "notes.jpg", "empty.png", "clip.mp4")
    }
    assert reasons["truncated.jpg"].startswith("corrupt: truncated.jpg")
    assert reasons["bomb.png"].startswith("bomb: bomb.png")
    assert reasons["notes.jpg"].startswith("unsupported")
    assert reasons["empty.png"].startswith("empty")
    assert "video, not an image" in reasons["clip.mp4"]
    assert not any(str(files) in reason for reason in reasons.values())


def test_an_oversize_image_is_refused_before_decoding(export: Path) -> None:
    size = os.path.getsize(export / "photos" / "meme.jpg")
    small = AttachmentReader(known=None, base_dir=export, max_bytes=size - 1)
    assert str(_read(small, path="photos/meme.jpg").error).startswith("too_large")
    exact = AttachmentReader(known=None, base_dir=export, max_bytes=size, ocr=False)
    assert _read(exact, path="photos/meme.jpg").error is None


def test_only_the_first_images_of_a_post_are_read(export: Path) -> None:
    reader = AttachmentReader(known=None, base_dir=export, max_images=1, ocr=False)
    first, second = reader.read(
        _post(Attachment(path="photos/plain.png"), Attachment(path="photos/meme.jpg"))
    )
    assert first.error is None
    assert "first 1 images" in str(second.error)


def test_urls_are_fetched_only_when_allowed(export: Path) -> None:
    served = {"/meme.jpg": (export / "photos" / "meme.jpg").read_bytes()}
    with file_server("127.0.0.1", served, {"/hop": "/meme.jpg"}) as origin:
        off = AttachmentReader(known=None, base_dir=None)
        assert "not fetched" in str(_read(off, url=f"{origin}/meme.jpg").error)
        public_only = AttachmentReader(known=None, base_dir=None, fetch_urls=True)
        private = _read(public_only, url=f"{origin}/meme.jpg")
        assert "non-public address" in str(private.error) and private.text == ""
        allowed = AttachmentReader(
            known=None, base_dir=None, fetch_urls=True, url_allow=[ip_network("127.0.0.1/32")]
        )
        fetched = _read(allowed, url=f"{origin}/hop")
        missing = _read(allowed, url=f"{origin}/nothing.jpg")
        capped = AttachmentReader(
            known=None,
            base_dir=None,
            fetch_urls=True,
            url_allow=[ip_network("127.0.0.1/32")],
            max_bytes=1000,
        )
        too_big = _read(capped, url=f"{origin}/meme.jpg")
    assert fetched.error is None and "MUJAHIDEEN" in fetched.text
    assert "HTTP 404" in str(missing.error)
    assert "over the 1000-byte limit" in str(too_big.error)
    for scheme in ("file:///etc/passwd", "ftp://example.org/x.jpg"):
        assert "only http and https" in str(_read(allowed, url=scheme).error)


def test_an_attachment_with_nothing_to_read() -> None:
    reader = AttachmentReader(known=None, base_dir=None)
    assert "neither a path nor a URL" in str(_read(reader).error)
