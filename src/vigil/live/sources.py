"""Which evidence sources watch a stream: the names in ``live_sources`` plus the user's ONNX
classifiers (``live_onnx_models``). Built once per monitor, so models load (and a bad ONNX spec
fails) when watching starts, not on the first frame of some stream."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import structlog

from vigil.hashing import KnownContent
from vigil.live.evidence.base import EvidenceFactory
from vigil.live.evidence.known import KnownContentFactory
from vigil.live.samples import AUDIO_RATE, AUDIO_WINDOW_SECONDS, AudioWindow, VideoSample
from vigil.live.session import StreamSpec
from vigil.live.settings import DEFAULT_SOURCES as KNOWN_SOURCES
from vigil.live.settings import LiveSettings

log = structlog.get_logger(__name__)
_WARM_UP = "warm-up"


def _shared(name: str, known: KnownContent, settings: LiveSettings) -> EvidenceFactory | None:
    """The factory for ``name`` when it does not depend on the stream, else None."""
    if name == "gunshot":
        from vigil.live.evidence.audio import gunshot_factory

        return gunshot_factory()
    if name == "weapon":
        from vigil.live.evidence.weapon import weapon_factory

        return weapon_factory(every_n_frames=settings.live_weapon_every)
    if name == "ego_motion":
        from vigil.live.evidence.motion import EgoMotionFactory

        return EgoMotionFactory()
    if name == "hud":
        from vigil.live.evidence.hud import HudFactory

        return HudFactory()
    if name == "gametext":
        from vigil.live.evidence.gametext import GameTextFactory

        return GameTextFactory()
    if name == "known_content":
        return KnownContentFactory(known, match_incidents=settings.live_match_incidents)
    return None


class SourceRegistry:
    def __init__(self, settings: LiveSettings, known: KnownContent) -> None:
        unknown = sorted(set(settings.live_sources) - set(KNOWN_SOURCES))
        if unknown:
            raise ValueError(
                f"unknown evidence sources {unknown} (known: {', '.join(KNOWN_SOURCES)})"
            )
        self._shared: list[EvidenceFactory] = [
            factory
            for name in settings.live_sources
            if (factory := _shared(name, known, settings)) is not None
        ]
        self._metadata = "metadata" in settings.live_sources
        if settings.live_onnx_models is not None:
            from vigil.live.evidence.onnx import load_onnx_specs, onnx_factories

            self._shared += onnx_factories(load_onnx_specs(settings.live_onnx_models))

    def __call__(self, spec: StreamSpec) -> Sequence[EvidenceFactory]:
        if not self._metadata:
            return list(self._shared)
        from vigil.live.evidence.metadata import MetadataFactory

        metadata = dict(spec.metadata)
        lookup: Callable[[str], dict[str, str]] = lambda _stream: metadata  # noqa: E731
        return [*self._shared, MetadataFactory(lookup)]


def warm_up(factories: Sequence[EvidenceFactory]) -> None:
    """Run each source once on a grey frame or a silent second, so that what loads on first
    use (the backbone and its traced graph, the OCR engine) loads now: loaded by the first
    frames of ten streams at once, it held every analysis thread for 20 s and their queues
    overflowed."""
    frame = VideoSample(_WARM_UP, 0.0, np.full((360, 640, 3), 128, np.uint8), time.monotonic())
    silence = np.zeros(int(AUDIO_RATE * AUDIO_WINDOW_SECONDS), np.float32)
    window = AudioWindow(_WARM_UP, 0.0, silence, time.monotonic())
    for factory in factories:
        source = factory(_WARM_UP)
        try:
            if source.modality == "video":
                source.observe(frame)
            else:
                source.observe(window)
        except Exception:  # a source that fails here fails on streams too, and says so there
            log.warning("live.warm_up_failed", source=source.name, exc_info=True)
