"""Process-wide settings for a process that watches many streams at once.

Every one of them trades one task's speed for more streams on the same cores, so they are set
once, when the first stream starts (:class:`~vigil.live.monitor.LiveMonitor`), and they apply
to the whole process.
"""

from __future__ import annotations

import sys

from vigil.live.settings import LiveSettings
from vigil.threads import limit_threads


def spend_cores_on_streams(settings: LiveSettings) -> None:
    """One thread per inference (:func:`vigil.threads.limit_threads`; two cost 2.2x the CPU of
    one for 1.5x the speed), and a shorter GIL switch interval (the reason below)."""
    limit_threads(settings.live_model_threads)
    # Reader threads make many short calls into FFmpeg, each releasing the GIL, and then queue
    # to take it back behind analysis threads for up to the switch interval: at Python's 5 ms,
    # 10 720p streams fell behind in one process; at 1 ms they kept up (bench/RESULTS.md).
    sys.setswitchinterval(settings.live_switch_interval_ms / 1000)
