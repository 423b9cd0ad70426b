"""Runs ``vpdq.computeHash`` in a child process and prints the frames as JSON.

vpdq's native decoder aborts the whole process (an FFmpeg assertion, not an exception) on some
damaged streams, so an upload must never be hashed by it inside a long-lived server or a folder
scan: ``python -m vigil.hashing.signals.vpdq_worker PATH SECONDS_PER_HASH``.
"""

from __future__ import annotations

import json
import sys

import vpdq


def main(argv: list[str]) -> int:
    path, seconds = argv[0], float(argv[1])
    features = vpdq.computeHash(path, seconds_per_hash=seconds, thread_count=1)
    frames = [[f.hex, int(f.quality), float(f.timestamp)] for f in features]
    sys.stdout.write(json.dumps(frames))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
