"""A process that watches streams tunes itself for many streams: checked in a fresh process,
since the settings are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import numpy  # loads numpy's OpenBLAS before the limit, as a live process has
from threadpoolctl import threadpool_info
from vigil.live.process import spend_cores_on_streams
from vigil.live.settings import LiveSettings

spend_cores_on_streams(LiveSettings(live_model_threads=1, live_switch_interval_ms=0.5))
import torch
blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(json.dumps({"switch": sys.getswitchinterval(), "torch": torch.get_num_threads(),
                  "blas": blas}))
"""


def test_first_stream_sets_threads_and_switch_interval() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    tuned = json.loads(run.stdout.strip().splitlines()[-1])
    assert tuned["switch"] == 0.0005
    assert tuned["torch"] == 1
    assert tuned["blas"] and set(tuned["blas"]) == {1}
