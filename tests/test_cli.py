"""The installed ``vigil`` command, run as a user would, in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vigil.config import Settings

from media_factory import write_jpeg

VIGIL = [sys.executable, "-m", "vigil"]


def run(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIGIL_HOME": str(settings.home),
        "VIGIL_DATABASE_URL": settings.resolved_database_url,
    }
    result = subprocess.run([*VIGIL, *args], env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"vigil {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_bank_add_match_export_import(settings: Settings, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for i in range(3):
        write_jpeg(evidence / f"{i}.jpg", seed=30 + i)
    (evidence / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")

    run(settings, "bank", "create", "incident", "--description", "test")
    added = run(settings, "bank", "add", "incident", str(evidence), "--label", "attack")
    assert "added 3 entries" in added.stdout and "broken.jpg" in added.stderr
    assert (
        run(settings, "bank", "add", "incident", str(evidence), "--strict", check=False).returncode
        == 1
    )

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    write_jpeg(uploads / "copy.jpg", seed=31, quality=40)
    write_jpeg(uploads / "new.jpg", seed=99)
    lines = run(settings, "match", str(uploads), "--json").stdout.splitlines()
    by_name = {Path(o["path"]).name: o for o in map(json.loads, lines)}
    assert [m["labels"] for m in by_name["copy.jpg"]["matches"]] == [["attack"]]
    assert by_name["new.jpg"]["matches"] == []
    assert {s["signal_type"] for s in by_name["new.jpg"]["signals"]} >= {"pdq", "md5", "sha256"}

    exported = tmp_path / "incident.jsonl"
    run(settings, "bank", "export", "incident", "--format", "jsonl", "-o", str(exported))
    run(settings, "bank", "create", "copy")
    imported = run(settings, "bank", "import", "copy", str(exported))
    assert "bad row(s) skipped" in imported.stdout
    listing = {
        o["name"]: o
        for o in map(json.loads, run(settings, "bank", "list", "--json").stdout.splitlines())
    }
    assert listing["copy"]["signals"] == listing["incident"]["signals"] > 0


def test_hash_json_and_strict_exit(settings: Settings, tmp_path: Path) -> None:
    good = write_jpeg(tmp_path / "good.jpg", seed=40)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = run(settings, "hash", str(good), str(bad), "--json")
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["error"] is None for o in objects] == [True, False]
    assert objects[1]["error"]["reason"] == "corrupt"
    assert run(settings, "hash", str(good), str(bad), "--strict", check=False).returncode == 1


def test_unknown_bank_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    result = run(settings, "bank", "add", "nope", str(tmp_path), check=False)
    assert result.returncode == 2 and "no bank named 'nope'" in result.stderr
