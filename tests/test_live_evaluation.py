"""`vigil live eval run` on a folder of labelled clips (the format platforms use for their own
footage): the real pipeline in fast mode, scored against the labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.live.synth import FAST_SIZE, build_stream, held_out_assets, scenario


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    spec = scenario("benign_tripod", seed=5, duration_s=10.0, size=FAST_SIZE)
    build_stream(spec, folder / "street.ts", held_out_assets(shared_data))
    (folder / "street.json").unlink()  # only the labels file describes the folder
    (folder / "labels.csv").write_text("clip,positive,onset_s,category\nstreet.ts,0,,benign\n")
    return folder


def _run(folder: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIGIL_HOME": str(tmp_path / "home"),
        "VIGIL_LIVE_SOURCES": json.dumps(["ego_motion", "hud", "known_content"]),
    }
    return subprocess.run(
        [sys.executable, "-m", "vigil", "live", "eval", "run", str(folder), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_labelled_folder_is_scored_with_its_negative_hours(clips: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    done = _run(clips, tmp_path, "--json", "--report", str(report))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["streams"] == 1 and summary["attack_streams"] == 0
    assert summary["false_alarms"] == 0 and summary["errors"] == []
    assert summary["negative_hours"] == pytest.approx(10 / 3600, abs=2 / 3600)
    assert summary["by_category"]["benign"]["streams"] == 1
    text = report.read_text()
    assert "street.ts" in text and "| ego_motion |" in text
    # The evaluation ran in its own store: nothing reached the real review queue.
    assert not (tmp_path / "home" / "vigil.db").exists()


def test_a_malformed_labels_file_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "labels.csv").write_text("clip,positive,onset_s\nmissing.ts,1,\n")
    done = _run(folder, tmp_path)
    assert done.returncode == 2
    assert "line 2" in done.stderr
