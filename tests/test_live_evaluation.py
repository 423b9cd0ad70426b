"""`vigil live eval run` on a folder of labelled clips (the format platforms use for their own
footage): the real pipeline in fast mode, scored against the labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.live.evaluation import rescore
from vigil.live.fusion import FusionConfig
from vigil.live.groundtruth import Manifest
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


def test_recorded_traces_rescore_to_the_same_result(clips: Path, tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    done = _run(clips, tmp_path, "--json", "--traces", str(traces))
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout.strip().splitlines()[-1])
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home")}
    again = subprocess.run(
        [sys.executable, "-m", "vigil", "live", "eval", "rescore", str(traces), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    rescored = json.loads(again.stdout.strip().splitlines()[-1])
    for key in ("streams", "false_alarms", "negative_hours", "by_category"):
        assert rescored[key] == ran[key]


def _trace(video: str, llr: list[dict[str, float]], onset: float | None) -> str:
    manifest = Manifest(
        video=video,
        synthetic=True,
        scenario="attack" if onset is not None else "benign_tripod",
        category="attack" if onset is not None else "benign",
        positive=onset is not None,
        onset_s=onset,
        duration_s=len(llr),
    )
    return json.dumps({"manifest": manifest.model_dump(mode="json"), "llr": llr, "error": None})


def test_rescoring_finds_the_delay_and_the_false_alarms_of_a_setting(tmp_path: Path) -> None:
    quiet = {"weapon": -1.0, "gunshot": -1.0}
    attack = [quiet] * 10 + [{"weapon": 2.5, "gunshot": 2.5}] * 10
    gun_shop = [{"weapon": 2.5, "gunshot": -1.0}] * 10 + [{"weapon": 2.5, "gunshot": 2.5}] * 3
    traces = tmp_path / "traces.jsonl"
    traces.write_text(_trace("a.ts", attack, 10.0) + "\n" + _trace("b.ts", gun_shop, None) + "\n")
    default = rescore(traces, FusionConfig()).summary()
    assert default["detected"] == 1 and default["false_alarms"] == 1
    assert default["delay_p50_s"] is not None and 0 < float(default["delay_p50_s"]) <= 3
    strict = rescore(traces, FusionConfig(alert=6.5, critical=12)).summary()
    assert strict["false_alarms"] == 0
    traces.write_text(_trace("a.ts", attack, 10.0) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"traces\.jsonl:2"):
        rescore(traces, FusionConfig())
