"""Text in images, read with RapidOCR (PP-OCR detection and recognition models inside its wheel,
run by ONNX Runtime): game HUDs in live streams, captions of memes attached to posts.

One engine per detection size per process, made on first use and shared by every caller behind
one lock: ONNX Runtime runs it on one thread, so that many streams and a post scanner share
the CPU fairly instead of each OCR call grabbing every core. RapidOCR's INFO logging (one line
per call) is silenced. A reading costs about 0.1 s for a 640x360 frame and 0.3-0.5 s for a
photo-sized meme on one core here; the callers decide how often to pay it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

_lock = threading.Lock()
_engines: dict[int, Any] = {}


def _engine(max_side: int) -> Any:
    """The process's RapidOCR engine for this detection size (made on first use)."""
    with _lock:
        if max_side not in _engines:
            from rapidocr import RapidOCR

            _engines[max_side] = RapidOCR(
                params={
                    "Global.log_level": "error",
                    "Global.use_cls": False,
                    "Det.limit_type": "max",
                    "Det.limit_side_len": max_side,
                    "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return _engines[max_side]


def read_text(rgb: np.ndarray, max_side: int = 640) -> list[tuple[str, float]]:
    """OCR lines of an RGB ``uint8`` image with their confidences, top to bottom. Detection runs
    on the image scaled so that its longer side is at most ``max_side`` px. Thread-safe: one
    reading at a time per process."""
    engine = _engine(max_side)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # RapidOCR takes arrays as OpenCV's BGR
    with _lock:
        result = engine(bgr)
    if result.txts is None or result.scores is None:
        return []
    return [
        (str(text), float(score)) for text, score in zip(result.txts, result.scores, strict=True)
    ]


def read_lines(rgb: np.ndarray, max_side: int = 640, min_confidence: float = 0.6) -> list[str]:
    """The lines :func:`read_text` is at least ``min_confidence`` sure of."""
    return [text for text, score in read_text(rgb, max_side) if score >= min_confidence]
