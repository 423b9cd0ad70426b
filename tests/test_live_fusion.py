"""The fusion: one cue never alerts, co-occurring cues alert within seconds, an intermittent cue
is remembered across quiet seconds, a bank match is decisive, look-alike evidence holds it
down, incidents end after a cool-down, thresholds follow the target rate."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from vigil.live.evidence import Evidence
from vigil.live.fusion import (
    CusumFusion,
    FusionConfig,
    calibrate,
    poisson_upper_95,
    replay,
)

ATTACK = {"gunshot": 2.5, "weapon": 2.5, "ego_motion": 1.0}
#: What the sources report when they see nothing (model cards): no gunshot, no weapon, a tripod.
NOTHING = {"gunshot": -1.0, "weapon": -1.0, "ego_motion": -0.5}


def test_a_single_cue_at_its_ceiling_never_alerts() -> None:
    config = FusionConfig()
    for source in ATTACK:
        windows = replay([{**NOTHING, source: ATTACK[source]}] * 600, config)
        assert max(w.statistic for w in windows) <= config.cap < config.alert
        assert {w.level for w in windows} <= {"normal", "watch"}


def test_co_occurring_cues_alert_within_seconds_and_escalate() -> None:
    benign = [{"gunshot": -0.5, "weapon": -0.8}] * 30
    windows = replay([*benign, *[ATTACK] * 20])
    first_alert = next(w for w in windows if w.level == "alert")
    assert first_alert.start - 30 <= 3
    assert max(w.statistic for w in windows[:30]) == 0.0
    assert all(w.incident == 1 for w in windows[30:])


def test_a_shot_is_remembered_across_the_quiet_seconds_of_an_attack() -> None:
    """The quiet seconds after a shot cost little under the mixture (a fraction of an attack's
    seconds has shots), so the shot still counts seconds later; without it, two quiet seconds
    erase it."""
    seconds = [{"gunshot": 2.5}, *[{"gunshot": -1.0}] * 6]
    mixed = [w.memory["gunshot"] for w in replay(seconds)]
    unmixed = [w.memory["gunshot"] for w in replay(seconds, FusionConfig(duty={}))]
    assert mixed[3] > 0.0 and unmixed[3] == 0.0
    assert mixed[0] < unmixed[0]  # and one shot is worth less than an attack's worth of shots


def test_a_bank_match_is_decisive_on_its_own() -> None:
    windows = replay([{**NOTHING, "known_content": 9.0}] * 2)
    assert windows[0].level == "alert" and windows[1].level == "critical"


def test_look_alike_evidence_holds_the_statistic_down() -> None:
    game = {**ATTACK, "hud": -4.0}
    windows = replay([game] * 300)
    assert max(w.statistic for w in windows) < FusionConfig().alert
    assert {w.level for w in windows} <= {"normal", "watch"}


def test_level_changes_report_onset_and_incidents_restart_after_cooldown() -> None:
    config = FusionConfig(cooldown_seconds=10)
    fusion = CusumFusion(config)
    changes = []
    seconds = [{}] * 5 + [ATTACK] * 3 + [NOTHING] * 30 + [ATTACK] * 3
    for second, llrs in enumerate(seconds):
        for name, value in llrs.items():
            changes += fusion.add(Evidence(name, second + 0.2, 0.5, value))
        changes += fusion.advance(second + 1.0 + config.slack_seconds)
    alerts = [c for c in changes if c.level == "alert"]
    assert [c.incident for c in alerts] == [1, 2]
    assert alerts[0].onset == 5.0
    assert alerts[1].onset == 38.0
    shares = fusion.contributions()
    assert set(shares) == {"gunshot", "weapon", "ego_motion"}
    assert sum(shares.values()) == pytest.approx(fusion.statistic)


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
    traces = [
        [{"weapon": rng.gauss(-1.0, 1.0), "gunshot": rng.gauss(-1.0, 1.0)} for _ in range(3600)]
        for _ in range(4)
    ]
    calibration = calibrate(traces, target_per_hour=1.0)
    assert calibration.benign_rate_per_hour <= 1.0 < calibrate(traces, 3.0).benign_rate_per_hour
    assert calibration.upper_95_per_hour >= calibration.benign_rate_per_hour
    tighter = calibrate(traces, target_per_hour=0.3)
    assert tighter.threshold > calibration.threshold
    looser = calibrate(traces, target_per_hour=1e6)
    assert looser.threshold < calibration.threshold


def test_the_poisson_bound_is_the_rule_of_three_for_no_events() -> None:
    assert poisson_upper_95(0) == pytest.approx(-math.log(0.05), rel=1e-6)
    assert poisson_upper_95(5) == pytest.approx(10.5130, rel=1e-4)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        FusionConfig(watch=5, alert=3)
    with pytest.raises(ValueError, match="straddle"):
        FusionConfig(bounds={"hud": (1.0, 2.0)})
    with pytest.raises(ValueError, match="duty"):
        FusionConfig(duty={"gunshot": 0.0})
    with pytest.raises(ValueError, match="positive"):
        calibrate([[{}]], target_per_hour=0)


def test_the_settings_carry_the_mixture_and_can_turn_it_off(tmp_path: Path) -> None:
    from vigil.live.settings import LiveSettings

    assert LiveSettings(home=tmp_path).fusion().duty == FusionConfig().duty != {}
    off = LiveSettings(home=tmp_path, live_duty={}, live_source_cap=2.5).fusion()
    assert off.duty == {} and off.cap == 2.5
