"""``vigil alerts``, run as an operator would, in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_review_support import audit_actions, make_alert
from vigil.config import Settings
from vigil.store import Database


def _vigil(settings: Settings, *args: str, **variables: str) -> str:
    env = {
        **os.environ,
        "VIGIL_HOME": str(settings.home),
        "VIGIL_DATABASE_URL": settings.resolved_database_url,
        **variables,
    }
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "alerts", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_show_reprioritise(settings: Settings) -> None:
    db = Database(settings.resolved_database_url)
    try:
        mild = make_alert(db, "mild", severity=3, reach=10**6, explanation="viral meme")
        severe = make_alert(db, "severe", severity=9, text="manifesto", explanation="manifesto")
        listed = [json.loads(line) for line in _vigil(settings, "list", "--json").splitlines()]
        assert [a["id"] for a in listed] == [severe, mild]
        assert listed[0]["text"] == "" and listed[0]["evidence_redacted"]
        assert "manifesto" in _vigil(settings, "list")
        assert json.loads(_vigil(settings, "show", str(severe)))["text"] == ""
        assert audit_actions(db, "alert", severe) == ["alert.create"]
        shown = json.loads(_vigil(settings, "show", str(severe), "--evidence"))
        assert shown["text"] == "manifesto"
        assert audit_actions(db, "alert", severe) == ["alert.create", "alert.view"]
        # A heavier reach weight puts the viral alert first once keys are recomputed.
        heavier = _vigil(settings, "reprioritise", VIGIL_REVIEW_REACH_WEIGHT="2")
        assert "reprioritised 2 alerts" in heavier
        relisted = [json.loads(line) for line in _vigil(settings, "list", "--json").splitlines()]
        assert [a["id"] for a in relisted] == [mild, severe]
    finally:
        db.dispose()
