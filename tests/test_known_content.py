"""End to end through the facade: real images and videos, real database, real index."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import require_embedding
from vigil.config import Settings
from vigil.hashing import KnownContent

from media_factory import reencode, write_jpeg, write_video


def test_added_image_matches_edited_copies_at_once(settings: Settings, tmp_path: Path) -> None:
    original = write_jpeg(tmp_path / "original.jpg", seed=10, size=(800, 600))
    known = KnownContent(settings)
    try:
        known.banks.create("incident")
        [(result, entry_id)] = list(known.add_content("incident", [original], labels=["attack"]))
        assert result.ok and entry_id is not None

        smaller = tmp_path / "smaller.jpg"
        Image.open(original).resize((400, 300)).save(smaller, quality=40)
        _, report = known.match(smaller)
        assert [(m.bank, m.entry_id, m.labels) for m in report.matches] == [
            ("incident", entry_id, ["attack"])
        ]
        assert report.matches[0].distance <= 31

        unrelated = write_jpeg(tmp_path / "other.jpg", seed=11)
        assert known.match(unrelated)[1].matches == []
    finally:
        known.close()


def test_a_second_process_sees_new_hashes(settings: Settings, tmp_path: Path) -> None:
    """Two KnownContent objects on one database stand for two processes (CLI and server)."""
    server = KnownContent(settings)
    cli = KnownContent(settings)
    try:
        cli.banks.create("incident")
        image = write_jpeg(tmp_path / "a.jpg", seed=12)
        assert server.match(image)[1].matches == []
        list(cli.add_content("incident", [image]))
        server.matcher.refresh(force=True)
        assert [m.bank for m in server.match(image)[1].matches] == ["incident"]
    finally:
        cli.close()
        server.close()


def test_negative_bank_vetoes_and_disabled_bank_is_ignored(
    settings: Settings, tmp_path: Path
) -> None:
    image = write_jpeg(tmp_path / "news.jpg", seed=13)
    known = KnownContent(settings)
    try:
        known.banks.create("incident")
        known.banks.create("news", negative=True)
        list(known.add_content("incident", [image]))
        assert len(known.match(image)[1].matches) == 1

        list(known.add_content("news", [image]))
        report = known.match(image)[1]
        assert report.matches == [] and [m.bank for m in report.suppressed] == ["incident"]
        assert [m.bank for m in report.benign] == ["news"]

        known.banks.update("news", enabled=False)
        known.banks.update("incident", enabled=False)
        report = known.match(image)[1]
        assert (report.matches, report.suppressed, report.benign) == ([], [], [])
    finally:
        known.close()


def test_per_bank_threshold(settings: Settings, tmp_path: Path) -> None:
    original = write_jpeg(tmp_path / "o.jpg", seed=14)
    edited = tmp_path / "e.jpg"
    Image.open(original).rotate(3, expand=False).save(edited, quality=30)
    # The threshold is PDQ's: the second stage, which would verify this copy, is left out.
    known = KnownContent(settings.model_copy(update={"embedding": "off"}))
    try:
        known.banks.create("strict", pdq_threshold=0)
        list(known.add_content("strict", [original]))
        assert known.match(edited, ["strict"])[1].matches == []
        known.banks.update("strict", pdq_threshold=128)
        assert [m.bank for m in known.match(edited, ["strict"])[1].matches] == ["strict"]
    finally:
        known.close()


def test_video_matches_a_reencoded_copy_by_vpdq(settings: Settings, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "attack.mp4", seed=15, seconds=6)
    reencoded = reencode(clip, tmp_path / "copy.mp4", size=(256, 192))
    other = write_video(tmp_path / "other.mp4", seed=16, seconds=6)
    known = KnownContent(settings)
    try:
        known.banks.create("incident")
        [(_, entry_id)] = list(known.add_content("incident", [clip]))
        assert [m.entry_id for m in known.match(clip)[1].matches] == [entry_id]
        copy_matches = known.match(reencoded)[1].matches
        assert [m.signal_type for m in copy_matches] == ["vpdq"]
        assert (copy_matches[0].query_share or 0) >= 0.8
        assert known.match(other)[1].matches == []
    finally:
        known.close()


def test_index_snapshot_survives_restart(settings: Settings, tmp_path: Path) -> None:
    images = [write_jpeg(tmp_path / f"{i}.jpg", seed=20 + i) for i in range(5)]
    known = KnownContent(settings)
    known.banks.create("incident")
    list(known.add_content("incident", images))
    known.index.compact()
    known.close()
    assert any(settings.index_dir.iterdir())

    restarted = KnownContent(settings)
    try:
        for image in images:
            assert [m.bank for m in restarted.match(image)[1].matches] == ["incident"]
    finally:
        restarted.close()


def test_second_stage_finds_a_cropped_and_rotated_copy_and_verifies_it(
    settings: Settings, tmp_path: Path, shared_data: Path
) -> None:
    """The embedding retrieves, keypoints verify: the copy matches with its inlier count, and
    another shot of the same press event, as close by the embedding, matches nothing."""
    require_embedding()
    original = tmp_path / "o.jpg"
    Image.open(shared_data / "images" / "kodak24" / "19.png").save(original, quality=90)
    photo = Image.open(original)
    cropped = tmp_path / "cropped.jpg"
    photo.crop((0, 0, 691, 461)).rotate(4).save(cropped, quality=70)
    faces = shared_data / "faces" / "lfw" / "images" / "Colin_Powell"
    known = KnownContent(settings.model_copy(update={"embedding": "on"}))
    try:
        known.banks.create("incident")
        list(known.add_content("incident", [original, faces / "Colin_Powell_0177.jpg"]))
        report = known.match(cropped)[1]
        assert [(m.bank, m.signal_type) for m in report.matches] == [("incident", "effnet_lite0")]
        assert (report.matches[0].verified_inliers or 0) >= settings.verify_min_inliers
        assert (
            report.as_json()["matches"][0]["verified_inliers"] == report.matches[0].verified_inliers
        )
        assert known.match(faces / "Colin_Powell_0180.jpg")[1].empty
        assert known.match(write_jpeg(tmp_path / "other.jpg", seed=18))[1].empty
    finally:
        known.close()


def test_without_the_embedding_a_crop_is_missed(settings: Settings, tmp_path: Path) -> None:
    """The control for the test above: PDQ alone cannot follow a 10 % corner crop."""
    original = write_jpeg(tmp_path / "o.jpg", seed=17, size=(800, 600))
    cropped = tmp_path / "cropped.jpg"
    Image.open(original).crop((0, 0, 720, 540)).rotate(4).save(cropped, quality=70)
    known = KnownContent(settings.model_copy(update={"embedding": "off"}))
    try:
        known.banks.create("incident")
        list(known.add_content("incident", [original]))
        assert known.match(cropped)[1].matches == []
    finally:
        known.close()
