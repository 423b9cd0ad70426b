"""Hashing, matching and bank routes over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from vigil.api.settings import ApiSettings

from media_factory import photo, truncate, write_jpeg
from test_api_support import Api, running_api

pytest_plugins = ["test_api_support"]


def _upload(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def _resized_copy(source: Path, target: Path) -> Path:
    with Image.open(source) as image:
        image.resize((320, 240)).save(target, "JPEG", quality=80)
    return target


def test_bank_content_then_match_an_edited_copy(api: Api, tmp_path: Path) -> None:
    original = write_jpeg(tmp_path / "original.jpg", seed=7)
    edited = _resized_copy(original, tmp_path / "edited.jpg")
    with api.client("analyst") as client:
        assert client.post("/v1/banks", json={"name": "incident-1"}).status_code == 201
        added = client.post(
            "/v1/banks/incident-1/content",
            files=_upload(original),
            data={"labels": "attack,livestream", "source": "gifct"},
        )
        assert added.status_code == 201, added.text
        entry_id = added.json()["entry_id"]

    with api.client("reviewer") as client:
        response = client.post("/v1/match", files=_upload(edited))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filename"] == "edited.jpg"
    assert {s["signal_type"] for s in body["signals"]} >= {"pdq", "md5", "sha256"}
    (match,) = [m for m in body["report"]["matches"] if m["signal_type"] == "pdq"]
    assert match["bank"] == "incident-1"
    assert match["entry_id"] == entry_id
    assert match["labels"] == ["attack", "livestream"]
    assert match["content_ref"] == "original.jpg"
    assert 0 <= match["distance"] <= 31
    # Resizing changes the bytes, so only the perceptual hash can have matched.
    assert [m["signal_type"] for m in body["report"]["matches"]] == ["pdq"]


def test_match_filters_banks_and_unrelated_content_does_not_match(api: Api, tmp_path: Path) -> None:
    banked = write_jpeg(tmp_path / "banked.jpg", seed=1)
    other = write_jpeg(tmp_path / "other.jpg", seed=2)
    with api.client() as client:
        for name in ("a", "b"):
            client.post("/v1/banks", json={"name": name}).raise_for_status()
        client.post("/v1/banks/a/content", files=_upload(banked)).raise_for_status()
        in_a = client.post("/v1/match", files=_upload(banked), params={"banks": ["a"]})
        in_b = client.post("/v1/match", files=_upload(banked), params={"banks": ["b"]})
        unrelated = client.post("/v1/match", files=_upload(other))
    assert {m["bank"] for m in in_a.json()["report"]["matches"]} == {"a"}
    assert in_b.json()["report"]["matches"] == []
    assert unrelated.json()["report"]["matches"] == []


def test_hash_returns_signals_without_server_paths(api: Api, tmp_path: Path) -> None:
    image = tmp_path / "picture.png"
    photo(seed=3).save(image, "PNG")
    with api.client("investigator") as client:
        response = client.post("/v1/hash", files=_upload(image))
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "image"
    assert "path" not in body
    pdq = next(s for s in body["signals"] if s["signal_type"] == "pdq")
    assert len(pdq["signal"]) == 64
    assert pdq["quality"] > 50


def test_match_signals_and_bank_signals(api: Api) -> None:
    md5 = "0f343b0931126a20f133d67c2b018a3b"
    with api.client() as client:
        client.post("/v1/banks", json={"name": "shared"}).raise_for_status()
        added = client.post(
            "/v1/banks/shared/signals",
            json=[{"signal_type": "video_md5", "signal": md5.upper(), "labels": ["tcap"]}],
        )
        assert added.status_code == 201, added.text
        matched = client.post("/v1/match/signals", json=[{"signal_type": "md5", "signal": md5}])
        bad_value = client.post("/v1/match/signals", json=[{"signal_type": "md5", "signal": "zz"}])
        bad_type = client.post(
            "/v1/banks/shared/signals", json=[{"signal_type": "x", "signal": md5}]
        )
    (match,) = matched.json()["matches"]
    assert match["entry_id"] == added.json()["entry_ids"][0]
    assert match["labels"] == ["tcap"]
    assert bad_value.status_code == 422
    assert bad_value.json()["error"] == "invalid_signal"
    assert bad_type.status_code == 422


def test_bank_lifecycle_and_errors(api: Api) -> None:
    with api.client() as client:
        created = client.post("/v1/banks", json={"name": "news", "negative": True})
        duplicate = client.post("/v1/banks", json={"name": "news"})
        bad_name = client.post("/v1/banks", json={"name": "no spaces"})
        patched = client.patch("/v1/banks/news", json={"enabled": False, "pdq_threshold": 20})
        bad_threshold = client.patch("/v1/banks/news", json={"pdq_threshold": 500})
        listed = client.get("/v1/banks")
        deleted = client.delete("/v1/banks/news")
        gone = client.get("/v1/banks/news")
        missing_content = client.post("/v1/banks/news/signals", json=[])
    assert created.status_code == 201
    assert created.json()["negative"] is True
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "bank_exists"
    assert bad_name.status_code == 422
    assert patched.json()["enabled"] is False
    assert patched.json()["pdq_threshold"] == 20
    assert bad_threshold.status_code == 422
    assert [b["name"] for b in listed.json()] == ["news"]
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert gone.json()["error"] == "bank_not_found"
    assert missing_content.status_code == 404


def test_import_reports_bad_rows_and_export_round_trips(api: Api, tmp_path: Path) -> None:
    hash_list = tmp_path / "list.csv"
    hash_list.write_text(
        "signal_type,signal,labels\n"
        f"md5,{'a' * 32},propaganda\n"
        "md5,not-a-hash\n"
        f"sha256,{'b' * 64},propaganda,video\n"
    )
    with api.client() as client:
        client.post("/v1/banks", json={"name": "imported"}).raise_for_status()
        report = client.post("/v1/banks/imported/import", files=_upload(hash_list))
        exports = {
            fmt: client.get("/v1/banks/imported/export", params={"format": fmt})
            for fmt in ("csv", "tsv", "jsonl", "pytx")
        }
        unknown = client.get("/v1/banks/nope/export")
    assert report.status_code == 200, report.text
    assert report.json()["imported"] == 2
    assert [e["line"] for e in report.json()["errors"]] == [3]
    assert exports["csv"].text == f"md5,{'a' * 32},propaganda\nsha256,{'b' * 64},propaganda,video\n"
    assert exports["csv"].headers["content-type"].startswith("text/csv")
    assert exports["tsv"].text.splitlines()[1] == f"sha256\t{'b' * 64}\tpropaganda\tvideo"
    assert [json.loads(line)["labels"] for line in exports["jsonl"].text.splitlines()] == [
        ["propaganda"],
        ["propaganda", "video"],
    ]
    assert exports["pytx"].text.splitlines() == [f"md5 {'a' * 32}", f"sha256 {'b' * 64}"]
    assert unknown.status_code == 404


def test_oversize_upload_is_refused_with_413(api_settings: ApiSettings) -> None:
    small = api_settings.model_copy(update={"max_upload_bytes": 2048})
    jpeg_start = b"\xff\xd8\xff\xe0"
    with running_api(small) as api, api.client() as client:
        # Far over: cut off while it streams in. Just over: caught when the part is saved.
        far_over = client.post("/v1/hash", files={"file": ("a.jpg", jpeg_start * 100_000)})
        just_over = client.post("/v1/hash", files={"file": ("b.jpg", jpeg_start * 600)})
        at_limit = client.post("/v1/hash", files={"file": ("c.jpg", jpeg_start * 512)})
    assert far_over.status_code == 413
    assert far_over.json() == {"error": "too_large", "detail": "uploads are limited to 2048 bytes"}
    assert just_over.status_code == 413
    # Not refused for size: it gets as far as the decoder, which finds no image in it.
    assert at_limit.status_code == 422


def test_corrupt_and_non_media_uploads_are_422(api: Api, tmp_path: Path) -> None:
    whole = write_jpeg(tmp_path / "whole.jpg", seed=5)
    broken = truncate(whole, tmp_path / "broken.jpg", keep=0.3)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with api.client() as client:
        corrupt = client.post("/v1/hash", files=_upload(broken))
        unsupported = client.post("/v1/match", files=_upload(text))
        empty = client.post("/v1/hash", files={"file": ("empty.jpg", b"")})
    assert corrupt.status_code == 422
    assert corrupt.json()["error"] == "corrupt"
    assert "broken.jpg" in corrupt.json()["detail"]
    assert "vigil-upload" not in corrupt.json()["detail"]
    assert unsupported.status_code == 422
    assert unsupported.json()["error"] == "unsupported"
    assert empty.status_code == 422
    assert empty.json()["error"] == "empty"


def test_malformed_json_is_422(api: Api) -> None:
    with api.client() as client:
        truncated = client.post(
            "/v1/match/signals",
            content=b'[{"signal_type": "md5", "sig',
            headers={"Content-Type": "application/json"},
        )
        wrong_shape = client.post("/v1/banks", json={"description": "no name"})
    assert truncated.status_code == 422
    assert truncated.json()["error"] == "invalid_request"
    assert truncated.json()["detail"][0]["type"] == "json_invalid"
    assert wrong_shape.status_code == 422


def test_upload_temp_files_are_deleted(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    good = write_jpeg(tmp_path / "good.jpg", seed=6)
    with api.client() as client:
        statuses = [
            client.post("/v1/hash", files=_upload(good)).status_code,
            client.post("/v1/hash", files={"file": ("bad.jpg", b"\xff\xd8\xff junk")}).status_code,
        ]
    assert statuses == [200, 422]
    assert list(temp.iterdir()) == []
