"""Process-wide settings for a process that watches many streams at once.

Every one of them trades one task's speed for more streams on the same cores, so they are set
once, when the first stream starts (:class:`~vigil.live.monitor.LiveMonitor`), and they apply
to the whole process.
"""

from __future__ import annotations

import sys

from vigil.live.settings import LiveSettings


def spend_cores_on_streams(settings: LiveSettings) -> None:
    """Fewer threads per inference, and a shorter GIL switch interval (the reasons below)."""
    _limit_model_threads(settings.live_model_threads)
    # Reader threads make many short calls into FFmpeg, each releasing the GIL, and then queue
    # to take it back behind analysis threads for up to the switch interval: at Python's 5 ms,
    # 10 720p streams fell behind in one process; at 1 ms they kept up (bench/RESULTS.md).
    sys.setswitchinterval(settings.live_switch_interval_ms / 1000)


def _limit_model_threads(threads: int) -> None:
    """Cap torch's threads and the BLAS libraries loaded so far (numpy's and scipy's OpenBLAS).

    One thread per inference spends the cores on more streams: two cost 2.2x the CPU of one for
    1.5x the speed. OpenBLAS also keeps a worker per core spinning after every call: with four
    streams that spin took a quarter of the process's CPU (192 vs 144 ms per stream-second),
    for matrix products too small to gain from a second thread.
    """
    try:
        import torch
    except ImportError:
        pass  # without the embed extra there is no backbone to limit
    else:
        torch.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
