"""Between a reader thread and its consumer: a bounded queue that drops the oldest sample when
the consumer falls behind, because live detection wants now, not a growing backlog. A file read
as fast as possible (evaluation) blocks the reader instead: nothing is lost, there is no "now"."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator

from vigil.live.samples import AudioWindow, VideoSample

Sample = VideoSample | AudioWindow


class SampleQueue:
    """Several readers may share one queue (one consumer for many streams); drops are counted
    per stream id."""

    def __init__(self, maxsize: int = 32, *, block: bool = False) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._items: deque[Sample] = deque()
        self._maxsize = maxsize
        self._block = block
        self._ready = threading.Condition()
        self._closed = False
        self._dropped: Counter[str] = Counter()

    def put(self, sample: Sample) -> None:
        with self._ready:
            if self._block:
                self._ready.wait_for(lambda: len(self._items) < self._maxsize or self._closed)
            if self._closed:
                return
            if len(self._items) >= self._maxsize:
                self._dropped[self._items.popleft().stream_id] += 1
            self._items.append(sample)
            self._ready.notify_all()

    def get(self, timeout: float | None = None) -> Sample | None:
        """The oldest sample; None after ``timeout`` seconds, or once closed and empty."""
        with self._ready:
            self._ready.wait_for(lambda: self._items or self._closed, timeout)
            if not self._items:
                return None
            sample = self._items.popleft()
            self._ready.notify_all()  # a blocked writer may go on
            return sample

    def close(self) -> None:
        """No more samples will come: :meth:`get` drains what is left, then returns None."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def dropped(self, stream_id: str | None = None) -> int:
        with self._ready:
            return self._dropped[stream_id] if stream_id is not None else self._dropped.total()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Sample]:
        while (sample := self.get()) is not None:
            yield sample
