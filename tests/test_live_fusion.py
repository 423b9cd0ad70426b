"""The CUSUM fusion: one cue never alerts, co-occurring cues alert within seconds, look-alike
evidence holds it down, incidents end after a cool-down, thresholds follow the target rate."""

from __future__ import annotations

import random

import pytest

from vigil.live.evidence import Evidence
from vigil.live.fusion import CusumFusion, FusionConfig, calibrate, replay

ATTACK = {"gunshot": 2.5, "weapon": 2.5, "ego_motion": 1.0}
#: What the sources report when they see nothing (model cards): no gunshot, no weapon, a tripod.
NOTHING = {"gunshot": -1.0, "weapon": -1.0, "ego_motion": -0.5}


def test_a_single_cue_at_its_ceiling_never_leaves_zero() -> None:
    for source in ATTACK:
        windows = replay([{**NOTHING, source: ATTACK[source]}] * 600)
        assert max(w.statistic for w in windows) == 0.0
        assert {w.level for w in windows} == {"normal"}


def test_co_occurring_cues_alert_within_seconds_and_escalate() -> None:
    benign = [{"gunshot": -0.5, "weapon": -0.8}] * 30
    windows = replay([*benign, *[ATTACK] * 20])
    first_alert = next(w for w in windows if w.level == "alert")
    assert first_alert.start - 30 <= 2  # 4 per second over the drift: 5 after 2 windows
    assert any(w.level == "critical" for w in windows)
    assert all(w.incident == 1 for w in windows[30:])


def test_look_alike_evidence_holds_the_statistic_down() -> None:
    game = {**ATTACK, "hud": -4.0}
    assert max(w.statistic for w in replay([game] * 300)) == 0.0


def test_level_changes_report_onset_and_incidents_restart_after_cooldown() -> None:
    config = FusionConfig(cooldown_seconds=10)
    fusion = CusumFusion(config)
    changes = []
    seconds = [{}] * 5 + [ATTACK] * 3 + [{}] * 20 + [ATTACK] * 3
    for second, llrs in enumerate(seconds):
        for name, value in llrs.items():
            changes += fusion.add(Evidence(name, second + 0.2, 0.5, value))
        changes += fusion.advance(second + 1.0 + config.slack_seconds)
    alerts = [c for c in changes if c.level == "alert"]
    assert [c.incident for c in alerts] == [1, 2]
    assert alerts[0].onset == 5.0
    assert alerts[1].onset == 28.0
    assert fusion.contributions(since=28.0)["gunshot"] == pytest.approx(7.5)


def test_sparse_sources_hold_their_last_evidence() -> None:
    fusion = CusumFusion(FusionConfig(hold_seconds={"gametext": 3.0}))
    fusion.add(Evidence("gametext", 0.1, 0.9, -3.0))
    for second in range(1, 6):
        fusion.add(Evidence("weapon", second + 0.1, 0.9, 2.5))
    fusion.advance(10.0)
    by_start = {w.start: w.llr.get("gametext") for w in fusion.history}
    assert by_start[0.0] == by_start[3.0] == -3.0
    assert by_start[4.0] is None


def test_late_evidence_is_counted_in_the_open_window_not_lost() -> None:
    fusion = CusumFusion()
    fusion.add(Evidence("weapon", 5.2, 0.9, 2.0))
    fusion.add(Evidence("gunshot", 3.0, 0.9, 2.0))  # the audio thread lagged behind
    fusion.advance(7.0)
    assert any(w.llr.get("gunshot") == 2.0 for w in fusion.history)


def test_calibration_meets_the_target_on_benign_traces() -> None:
    rng = random.Random(7)
    traces = [[rng.gauss(-1.0, 1.5) for _ in range(3600)] for _ in range(4)]
    calibration = calibrate(traces, target_per_hour=0.1, drift=0.5)
    assert calibration.benign_rate_per_hour <= 0.1
    assert calibration.theta is not None
    tighter = calibrate(traces, target_per_hour=0.01, drift=0.5)
    assert tighter.threshold > calibration.threshold
    alarms_at_zero_threshold = calibrate(traces, target_per_hour=1e6, drift=0.5)
    assert alarms_at_zero_threshold.threshold < calibration.threshold


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        FusionConfig(watch=5, alert=3)
    with pytest.raises(ValueError, match="positive"):
        calibrate([[0.0]], target_per_hour=0, drift=1)
