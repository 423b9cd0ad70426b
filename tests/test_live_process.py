"""A process that watches streams tunes itself for many streams: checked in a fresh process,
since the settings are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import require_embedding

SCRIPT = """
import json, sys
import numpy  # loads numpy's OpenBLAS before the limit, as a live process has
from threadpoolctl import threadpool_info
from vigil.live.process import spend_cores_on_streams
from vigil.live.settings import LiveSettings

spend_cores_on_streams(LiveSettings(live_model_threads=1, live_switch_interval_ms=0.5))
loaded_by_the_cap = "torch" in sys.modules
from vigil.hashing.signals.embedding import embed_rgb

embed_rgb(numpy.zeros((64, 64, 3), numpy.uint8))  # the backbone loads torch now
import torch
pools = threadpool_info()
blas = [pool["num_threads"] for pool in pools if pool["user_api"] == "blas"]
openmp = [pool["num_threads"] for pool in pools if pool["user_api"] == "openmp"]
print(json.dumps({"switch": sys.getswitchinterval(), "torch": torch.get_num_threads(),
                  "blas": blas, "openmp": openmp, "loaded_by_the_cap": loaded_by_the_cap}))
"""


def test_first_stream_sets_threads_and_switch_interval() -> None:
    """The cap reaches torch and OpenMP runtimes loaded after it (by the backbone), without
    importing torch itself."""
    require_embedding()
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    tuned = json.loads(run.stdout.strip().splitlines()[-1])
    assert tuned["switch"] == 0.0005
    assert tuned["torch"] == 1
    assert not tuned["loaded_by_the_cap"]
    assert tuned["blas"] and set(tuned["blas"]) == {1}
    assert tuned["openmp"] and set(tuned["openmp"]) == {1}
