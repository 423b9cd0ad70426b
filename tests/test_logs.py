"""Logged exceptions carry their traceback, in both formats, and never local variables (which
can hold tokens and passwords). Run in a fresh process: logging is configured process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import sys
from vigil.logs import configure_logging, get_logger

configure_logging(json=sys.argv[1] == "json")

def fail() -> None:
    api_token = "vgl_" + "SECRET" * 3
    raise RuntimeError("the database went away")

try:
    fail()
except RuntimeError:
    get_logger("test").exception("batch_failed", queue="posts")
"""


@pytest.mark.parametrize("mode", ["json", "console"])
def test_exceptions_are_logged_with_traceback_and_without_locals(mode: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    assert "SECRETSECRET" not in run.stderr
    assert "the database went away" in run.stderr
    assert "in fail" in run.stderr  # the traceback's frame, not just the message
    if mode == "json":
        event = json.loads(run.stderr.strip().splitlines()[-1])
        assert event["event"] == "batch_failed" and "RuntimeError" in event["exception"]
