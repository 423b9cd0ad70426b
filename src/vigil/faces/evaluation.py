"""Measure a face model on LFW and write its model card (``vigil faces eval``).

The card is where the operating threshold comes from: :mod:`vigil.faces.engine` reads
``cards/<embedder>.json`` when ``faces_threshold`` is not set. Three measurements:

* verification, LFW's 10-fold protocol on ``pairs.txt`` (threshold chosen on nine folds,
  accuracy measured on the tenth), as published results report it;
* the operating point: the lowest threshold at which the false match rate over every
  cross-identity pair of images is at most a target (1e-4 by default), because in police use a
  false match wrongs a person; the false non-match rate over every same-identity pair at it;
* 1:N identification against a gallery of every identity (the single-image ones are
  distractors), with rank-1 of mated probes and false positives of non-mated ones.

Templates are cached on disk (embedding LFW takes minutes) under a key that holds the model.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from vigil.faces.engine import UnreadableImage, build_detector, build_embedder, decode_image
from vigil.faces.settings import FacesSettings
from vigil.faces.types import Detector, Embedder, FaceBox
from vigil.learning import cache_dir as vigil_cache_dir
from vigil.learning import markdown_table, roc_auc, threshold_at_fpr

#: Builds a detector and an embedder; called once in each worker process, so it must pickle
#: (a module-level function or a ``functools.partial`` of one).
ModelFactory = Callable[[], tuple[Detector, Embedder]]

#: LFW's crops are 62,500 pixels; an evaluation image far larger than this is a mistake.
MAX_IMAGE_PIXELS = 50_000_000
RANKS = (1, 5, 10)
#: False match rates the card shows the threshold and cost of, beside the operating one.
TRADE_OFF_FMRS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
#: dlib's published LFW accuracy for its ResNet (dlib.net, "dlib_face_recognition_resnet_model_v1").
DLIB_PUBLISHED_ACCURACY = 0.9938
PROBLEMS_SHOWN = 20

#: A box as fractions of the image's width and height: left, top, right, bottom.
Box = tuple[float, float, float, float]


class LfwError(ValueError):
    """The folder cannot be evaluated (no images)."""


@dataclass(frozen=True, order=True)
class ImageRef:
    """One LFW image: an identity and the image's number (1-based, as in ``pairs.txt``)."""

    name: str
    number: int

    @property
    def relative_path(self) -> str:
        return f"images/{self.name}/{self.name}_{self.number:04d}.jpg"


@dataclass(frozen=True)
class Pair:
    first: ImageRef
    second: ImageRef
    #: The View-2 fold (0-9) from ``pairs.csv``; None when it does not say.
    fold: int | None

    @property
    def same(self) -> bool:
        return self.first.name == self.second.name


@dataclass
class LfwSet:
    """An LFW-format folder as read, with every problem met on the way (missing files, bad
    lines), which the card reports."""

    root: Path
    images: list[ImageRef]
    pairs: list[Pair]
    problems: list[str] = field(default_factory=list)


def read_lfw(root: Path) -> LfwSet:
    """Read ``images/``, ``people.txt``, ``pairs.txt`` and ``pairs.csv`` under ``root``."""
    if not (root / "images").is_dir():
        raise LfwError(f"no LFW images folder at {root / 'images'}")
    problems: list[str] = []
    images = _existing_images(root, _listed_images(root, problems), problems)
    folds = _read_folds(root / "pairs.csv", problems)
    pairs = _read_pairs(root / "pairs.txt", folds, problems)
    return LfwSet(root=root, images=images, pairs=pairs, problems=problems)


def _listed_images(root: Path, problems: list[str]) -> list[ImageRef]:
    """Every image ``people.txt`` lists, or every image in the folder when it is missing."""
    people = root / "people.txt"
    if not people.is_file():
        problems.append("people.txt is missing: identities are read from images/")
        return sorted(_images_in_folder(root / "images"))
    images: list[ImageRef] = []
    for number, line in enumerate(people.read_text("utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            problems.append(f"people.txt line {number}: expected <name> <count>: {line!r}")
            continue
        images.extend(ImageRef(fields[0], i) for i in range(1, int(fields[1]) + 1))
    return images


def _images_in_folder(folder: Path) -> Iterator[ImageRef]:
    for path in folder.glob("*/*.jpg"):
        name, _, number = path.stem.rpartition("_")
        if name == path.parent.name and number.isdigit():
            yield ImageRef(name, int(number))


def _existing_images(root: Path, listed: list[ImageRef], problems: list[str]) -> list[ImageRef]:
    missing = [image for image in listed if not (root / image.relative_path).is_file()]
    if missing:
        shown = ", ".join(image.relative_path for image in missing[:5])
        problems.append(f"{len(missing)} listed images are missing (e.g. {shown})")
    present = set(listed) - set(missing)
    return sorted(present)


def _read_folds(path: Path, problems: list[str]) -> dict[tuple[ImageRef, ImageRef], int]:
    if not path.is_file():
        problems.append("pairs.csv is missing: no folds, so no 10-fold verification")
        return {}
    folds: dict[tuple[ImageRef, ImageRef], int] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                first = ImageRef(row["name1"], int(row["imagenum1"]))
                second = ImageRef(row["name2"], int(row["imagenum2"]))
                folds[(first, second)] = int(row["fold"])
            except (KeyError, TypeError, ValueError):
                problems.append(f"pairs.csv line {number}: unreadable row {row!r}")
    return folds


def _read_pairs(
    path: Path, folds: dict[tuple[ImageRef, ImageRef], int], problems: list[str]
) -> list[Pair]:
    if not path.is_file():
        problems.append("pairs.txt is missing: no verification")
        return []
    pairs: list[Pair] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        refs = _pair_refs(line.split())
        if refs is None:
            problems.append(f"pairs.txt line {number}: expected 3 or 4 fields: {line!r}")
            continue
        pairs.append(Pair(refs[0], refs[1], folds.get(refs)))
    unfolded = sum(pair.fold is None for pair in pairs)
    if folds and unfolded:
        problems.append(f"{unfolded} pairs of pairs.txt have no fold in pairs.csv")
    return pairs


def _pair_refs(fields: list[str]) -> tuple[ImageRef, ImageRef] | None:
    """``name i j`` (same person) or ``name1 i name2 j`` (different people)."""
    try:
        if len(fields) == 3:
            return ImageRef(fields[0], int(fields[1])), ImageRef(fields[0], int(fields[2]))
        if len(fields) == 4:
            return ImageRef(fields[0], int(fields[1])), ImageRef(fields[2], int(fields[3]))
    except ValueError:
        return None
    return None


# --- templates ---------------------------------------------------------------------------


@dataclass
class Templates:
    """One template per readable image (rows in the order of ``images``)."""

    model: str
    detector: str
    #: The settings that built the models and change templates (see :func:`embed_lfw`).
    options: dict[str, Any]
    images: list[ImageRef]
    embeddings: np.ndarray
    #: True where no face was detected and the central box was embedded instead.
    fell_back: np.ndarray
    #: "<path>: <why>" of each image that could not be decoded (left out).
    unreadable: list[str]
    #: The box embedded for those.
    central_box: Box

    def __post_init__(self) -> None:
        # Similarities in float64: a float32 score compared with a float64 threshold is rounded
        # to float32 first, and can land on the threshold meant to exclude it.
        self.embeddings = np.asarray(self.embeddings, dtype=np.float64)


@dataclass(frozen=True)
class _Embedded:
    """What a worker returns for one image: its template and box, or no face, or why it could
    not be read."""

    relative_path: str
    #: Why the image could not be decoded; None when it could.
    unreadable: str | None = None
    embedding: np.ndarray | None = None
    #: The embedded face's box (None: no face detected).
    box: Box | None = None


_worker_models: tuple[Detector, Embedder] | None = None
_worker_root: Path | None = None


def configured_models(settings: FacesSettings) -> tuple[Detector, Embedder]:
    """The detector and embedder face search runs with; ``partial(configured_models,
    settings)`` is a :data:`ModelFactory`."""
    return build_detector(settings), build_embedder(settings)


def default_cache_dir() -> Path:
    return vigil_cache_dir() / "faces"


def embed_lfw(
    lfw: LfwSet,
    factory: ModelFactory,
    *,
    options: dict[str, Any] | None = None,
    workers: int = 2,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Templates:
    """Templates of every image of ``lfw``: the detected face nearest the centre of the crop,
    or the central box where none is found. ``options``: the settings ``factory`` was built
    with that change templates (detector upsampling...), which key the cache and go on the
    card. ``progress`` is called with the number of images done since its last call. Cached
    under ``cache_dir/<model>/<key>.npz``."""
    detector, embedder = factory()
    options = options or {}
    key = _cache_key(lfw, detector, options)
    cache = (cache_dir or default_cache_dir()) / embedder.name / f"{key}.npz"
    if cache.is_file():
        if progress:
            progress(len(lfw.images))
        return _load_templates(cache, lfw, options)
    results = list(_embed_all(lfw, factory, workers, progress))
    templates = _complete(results, lfw, detector, embedder, options)
    _save_templates(cache, templates)
    return templates


def _cache_key(lfw: LfwSet, detector: Detector, options: dict[str, Any]) -> str:
    digest = hashlib.sha256(f"{detector.name}\n{json.dumps(options, sort_keys=True)}".encode())
    for image in lfw.images:
        size = (lfw.root / image.relative_path).stat().st_size
        digest.update(f"\n{image.relative_path}\t{size}".encode())
    return digest.hexdigest()[:32]


def _embed_all(
    lfw: LfwSet, factory: ModelFactory, workers: int, progress: Callable[[int], None] | None
) -> Iterator[_Embedded]:
    paths = [image.relative_path for image in lfw.images]
    if workers <= 1:
        _start_worker(factory, lfw.root)
        outputs: Iterator[_Embedded] = map(_embed_one, paths)
        yield from _advancing(outputs, progress)
        return
    # spawn, not fork: the caller may run threads (a progress bar), which fork would copy mid-way.
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_start_worker,
        initargs=(factory, lfw.root),
    ) as pool:
        yield from _advancing(pool.map(_embed_one, paths, chunksize=8), progress)


def _advancing(
    outputs: Iterator[_Embedded], progress: Callable[[int], None] | None
) -> Iterator[_Embedded]:
    for output in outputs:
        if progress:
            progress(1)
        yield output


def _start_worker(factory: ModelFactory, root: Path) -> None:
    global _worker_models, _worker_root
    _worker_models, _worker_root = factory(), root


def _embed_one(relative_path: str) -> _Embedded:
    assert _worker_models is not None and _worker_root is not None, "worker not started"
    detector, embedder = _worker_models
    try:
        rgb = read_image(_worker_root / relative_path)
    except (OSError, UnreadableImage) as exc:
        return _Embedded(relative_path, unreadable=str(exc))
    face = nearest_centre(detector.detect(rgb), rgb.shape[1], rgb.shape[0])
    if face is None:
        return _Embedded(relative_path)
    box = _fractions(face, rgb.shape[1], rgb.shape[0])
    return _Embedded(relative_path, embedding=embedder.embed(rgb, [face])[0], box=box)


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB ``uint8``, decoded as the engine decodes uploads."""
    return decode_image(path.read_bytes(), MAX_IMAGE_PIXELS)


def nearest_centre(faces: list[FaceBox], width: int, height: int) -> FaceBox | None:
    """The face whose box centre is nearest the image's centre (LFW's subject is centred)."""

    def distance(face: FaceBox) -> float:
        dx = (face.left + face.right - width) / 2
        dy = (face.top + face.bottom - height) / 2
        return float(dx * dx + dy * dy)

    return min(faces, key=distance, default=None)


def _fractions(face: FaceBox, width: int, height: int) -> Box:
    return (face.left / width, face.top / height, face.right / width, face.bottom / height)


def _complete(
    results: list[_Embedded],
    lfw: LfwSet,
    detector: Detector,
    embedder: Embedder,
    options: dict[str, Any],
) -> Templates:
    """Embed the central box of the images without a detected face."""
    readable = [result for result in results if result.unreadable is None]
    central = _central_box(readable)
    embeddings = [
        _embed_box(lfw.root / r.relative_path, central, embedder)
        if r.embedding is None
        else r.embedding
        for r in readable
    ]
    by_path = {image.relative_path: image for image in lfw.images}
    return Templates(
        model=embedder.name,
        detector=detector.name,
        options=options,
        images=[by_path[r.relative_path] for r in readable],
        embeddings=np.asarray(embeddings).reshape(-1, embedder.dimension),
        fell_back=np.array([r.embedding is None for r in readable], dtype=bool),
        unreadable=[f"{r.relative_path}: {r.unreadable}" for r in results if r.unreadable],
        central_box=central,
    )


def _central_box(results: list[_Embedded]) -> Box:
    """The median detected box: LFW's crops are centred, and the median keeps the detector's
    own framing, which the embedder's alignment expects."""
    boxes = np.array([r.box for r in results if r.box is not None], dtype=np.float64)
    if not len(boxes):
        raise LfwError("the detector found no face in any image")
    return _as_box(np.median(boxes, axis=0))


def _embed_box(path: Path, box: Box, embedder: Embedder) -> np.ndarray:
    rgb = read_image(path)
    height, width = rgb.shape[:2]
    face = FaceBox(
        left=round(box[0] * width),
        top=round(box[1] * height),
        right=round(box[2] * width),
        bottom=round(box[3] * height),
        score=0.0,
    )
    embedding: np.ndarray = embedder.embed(rgb, [face])[0]
    return embedding


def _save_templates(path: Path, templates: Templates) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    unfinished = path.with_suffix(".unfinished.npz")
    np.savez(
        unfinished,
        model=templates.model,
        detector=templates.detector,
        paths=np.array([image.relative_path for image in templates.images]),
        embeddings=templates.embeddings,
        fell_back=templates.fell_back,
        unreadable=np.array(templates.unreadable, dtype=str),
        central_box=np.array(templates.central_box),
    )
    unfinished.replace(path)


def _load_templates(path: Path, lfw: LfwSet, options: dict[str, Any]) -> Templates:
    with np.load(path) as stored:
        by_path = {image.relative_path: image for image in lfw.images}
        return Templates(
            model=str(stored["model"]),
            detector=str(stored["detector"]),
            options=options,
            images=[by_path[str(p)] for p in stored["paths"]],
            embeddings=stored["embeddings"],
            fell_back=stored["fell_back"],
            unreadable=[str(p) for p in stored["unreadable"]],
            central_box=_as_box(stored["central_box"]),
        )


def _as_box(values: np.ndarray) -> Box:
    left, top, right, bottom = (float(value) for value in values)
    return left, top, right, bottom


# --- measurements ------------------------------------------------------------------------


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (``score >= threshold`` decides "same") of highest accuracy on these
    pairs; among equally accurate cuts between distinct scores, the middle one."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    sorted_same = np.asarray(same, dtype=bool)[order]
    # Cut k: the k lowest scores are called "different", the rest "same".
    different_below = np.concatenate([[0], np.cumsum(~sorted_same)])
    same_above = sorted_same.sum() - np.concatenate([[0], np.cumsum(sorted_same)])
    correct = different_below + same_above
    # A cut between two equal scores cannot be made by a threshold.
    possible = np.ones(correct.size, dtype=bool)
    possible[1:-1] = sorted_scores[1:] > sorted_scores[:-1]
    best = np.flatnonzero(possible & (correct == correct[possible].max()))
    cut = int(best[best.size // 2])
    if cut == 0:
        return float(sorted_scores[0])
    if cut == sorted_scores.size:
        return float(np.nextafter(sorted_scores[-1], np.inf))
    return float((sorted_scores[cut - 1] + sorted_scores[cut]) / 2)


def ten_fold(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> list[dict[str, Any]]:
    """LFW's protocol: for each fold, the threshold that is best on the other folds, and the
    accuracy it gives on this one (also balanced: the mean of the rates at which same-person
    pairs are accepted and different-person pairs rejected)."""
    rows = []
    for fold in np.unique(folds):
        held = folds == fold
        threshold = best_threshold(scores[~held], same[~held])
        accepted, truth = scores[held] >= threshold, same[held]
        rows.append(
            {
                "fold": int(fold),
                "pairs": int(held.sum()),
                "threshold": threshold,
                "accuracy": float(np.mean(accepted == truth)),
                "balanced_accuracy": float(
                    (accepted[truth].mean() + (~accepted[~truth]).mean()) / 2
                ),
                "false_matches": int((accepted & ~truth).sum()),
                "false_non_matches": int((~accepted & truth).sum()),
            }
        )
    return rows


def pair_scores(embeddings: np.ndarray, identities: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Similarities of every pair of templates: (same identity, different identities)."""
    labels = np.unique(np.array(identities), return_inverse=True)[1]
    count = len(identities)
    genuine, impostor = [], []
    for start in range(0, count, 512):
        stop = min(start + 512, count)
        scores = embeddings[start:stop] @ embeddings.T
        later = np.arange(count)[None, :] > np.arange(start, stop)[:, None]
        same = labels[start:stop, None] == labels[None, :]
        genuine.append(scores[later & same])
        impostor.append(scores[later & ~same])
    return np.concatenate(genuine), np.concatenate(impostor)


def operating_point(genuine: np.ndarray, impostor: np.ndarray, target_fmr: float) -> dict[str, Any]:
    """The lowest threshold whose false match rate over ``impostor`` is at most the target,
    and the false non-match rate over ``genuine`` at it."""
    threshold = threshold_at_fpr(impostor, target_fmr)
    return {
        "threshold": threshold,
        "target_false_match_rate": target_fmr,
        **rates_at(genuine, impostor, threshold),
    }


def rates_at(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict[str, Any]:
    false_matches = int((impostor >= threshold).sum())
    false_non_matches = int((genuine < threshold).sum())
    return {
        "false_match_rate": false_matches / impostor.size,
        "false_non_match_rate": false_non_matches / genuine.size,
        "false_matches": false_matches,
        "impostor_pairs": int(impostor.size),
        "false_non_matches": false_non_matches,
        "genuine_pairs": int(genuine.size),
    }


def verification(lfw: LfwSet, templates: Templates, threshold: float) -> dict[str, Any]:
    """Accuracy on ``pairs.txt``: 10-fold (where folds are known) and at ``threshold``."""
    row_of = {image: row for row, image in enumerate(templates.images)}
    usable = [p for p in lfw.pairs if p.first in row_of and p.second in row_of]
    if not usable:
        return {"pairs": 0, "dropped_pairs": len(lfw.pairs)}
    first = templates.embeddings[[row_of[p.first] for p in usable]]
    second = templates.embeddings[[row_of[p.second] for p in usable]]
    scores = np.einsum("ij,ij->i", first, second)
    same = np.array([p.same for p in usable])
    result: dict[str, Any] = {
        "pairs": len(usable),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "dropped_pairs": len(lfw.pairs) - len(usable),
        "auc": roc_auc(same, scores),
        "at_operating_threshold": _accuracy_at(scores, same, threshold),
    }
    folded = np.array([p.fold is not None for p in usable])
    folds = np.array([p.fold for p in usable if p.fold is not None])
    # A fold's threshold is chosen on the others: it takes two folds at least.
    if np.unique(folds).size > 1:
        result["ten_fold"] = _fold_summary(ten_fold(scores[folded], same[folded], folds))
    return result


def _accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float | None]:
    accepted = scores >= threshold
    return {
        "accuracy": float(np.mean(accepted == same)),
        "same_accepted": float(accepted[same].mean()) if same.any() else None,
        "different_accepted": float(accepted[~same].mean()) if (~same).any() else None,
    }


def _fold_summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = np.array([fold["accuracy"] for fold in folds])
    std = float(accuracies.std(ddof=1)) if accuracies.size > 1 else 0.0
    return {
        "mean_accuracy": float(accuracies.mean()),
        "std": std,
        "standard_error": std / float(np.sqrt(accuracies.size)),
        "mean_balanced_accuracy": float(np.mean([fold["balanced_accuracy"] for fold in folds])),
        "false_matches": sum(fold["false_matches"] for fold in folds),
        "false_non_matches": sum(fold["false_non_matches"] for fold in folds),
        "folds": folds,
    }


def identification(templates: Templates, threshold: float) -> dict[str, Any]:
    """1:N search. Gallery: the first image of every identity (single-image identities are the
    distractors). Mated probes: the other images. Non-mated probes: each single-image identity
    searched with its own entry left out, and each mated probe with its mate left out."""
    names = [image.name for image in templates.images]
    gallery_of = {name: row for row, name in reversed(list(enumerate(names)))}
    gallery_rows = np.array(sorted(gallery_of.values()))
    column_of = {names[row]: column for column, row in enumerate(gallery_rows)}
    scores = templates.embeddings @ templates.embeddings[gallery_rows].T
    mate = np.array([column_of[name] for name in names])
    counts = Counter(names)
    in_gallery = np.zeros(len(names), dtype=bool)
    in_gallery[gallery_rows] = True
    mated = ~in_gallery
    single = in_gallery & np.array([counts[name] == 1 for name in names])
    mate_scores = scores[np.arange(len(names)), mate]
    # Rank of the mate among all gallery entries; ties count against the probe.
    ranks = (scores >= mate_scores[:, None]).sum(axis=1)
    others = scores.copy()
    others[np.arange(len(names)), mate] = -np.inf
    best_other = others.max(axis=1)
    return {
        "gallery": int(gallery_rows.size),
        "distractors": int(single.sum()),
        "mated_probes": int(mated.sum()),
        "mated_identities": int(sum(count > 1 for count in counts.values())),
        "rank": {str(k): float(np.mean(ranks[mated] <= k)) for k in RANKS},
        "rank1_per_identity": _per_identity_rank1(ranks[mated], list(np.array(names)[mated])),
        "identification_rate_at_threshold": float(
            np.mean((ranks[mated] == 1) & (mate_scores[mated] >= threshold))
        ),
        "non_mated": {
            "distractor_probes": _false_positives(best_other[single], threshold),
            "mate_removed_probes": _false_positives(best_other[mated], threshold),
        },
    }


def _per_identity_rank1(ranks: np.ndarray, names: list[str]) -> float:
    """Rank-1 averaged over identities, so that the few identities with hundreds of images do
    not stand for everyone."""
    by_name: dict[str, list[bool]] = {}
    for rank, name in zip(ranks, names, strict=True):
        by_name.setdefault(name, []).append(bool(rank == 1))
    return float(np.mean([np.mean(hits) for hits in by_name.values()]))


def _false_positives(best_scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Non-mated searches whose best candidate still reaches the threshold."""
    count = int((best_scores >= threshold).sum())
    return {
        "probes": int(best_scores.size),
        "false_positives": count,
        "rate": count / best_scores.size if best_scores.size else None,
    }


def evaluate(
    lfw: LfwSet, templates: Templates, *, target_fmr: float, command: str, data_label: str
) -> dict[str, Any]:
    """Every measurement of the card, as the JSON the engine reads."""
    if len(templates.images) < 2:
        raise LfwError("fewer than two images could be embedded")
    names = [image.name for image in templates.images]
    genuine, impostor = pair_scores(templates.embeddings, names)
    if not genuine.size or not impostor.size:
        raise LfwError("the images need at least two identities, one with two images")
    operating = operating_point(genuine, impostor, target_fmr)
    threshold = operating["threshold"]
    trade_off = [
        operating_point(genuine, impostor, target)
        for target in TRADE_OFF_FMRS
        if target != target_fmr
    ]
    result: dict[str, Any] = {
        "model": templates.model,
        "detector": templates.detector,
        "options": templates.options,
        "operating_point": operating,
        "trade_off": trade_off,
        "verification": verification(lfw, templates, threshold),
        "identification": identification(templates, threshold),
        "data": _data_summary(lfw, templates, data_label),
        "command": command,
    }
    return result


def _data_summary(lfw: LfwSet, templates: Templates, label: str) -> dict[str, Any]:
    counts = Counter(image.name for image in templates.images)
    return {
        "path": label,
        "identities": len(counts),
        "identities_with_several_images": sum(count > 1 for count in counts.values()),
        "images": len(lfw.images),
        "embedded": len(templates.images),
        "fell_back_to_central_box": int(templates.fell_back.sum()),
        "central_box": list(templates.central_box),
        "unreadable": templates.unreadable,
        "problems": lfw.problems,
    }


# --- the card ----------------------------------------------------------------------------


def write_card(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``<model>.json`` (read by the engine) and ``<model>.md`` (for people) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{result['model']}.json"
    markdown_path = out_dir / f"{result['model']}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(model_card(result), encoding="utf-8")
    return json_path, markdown_path


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _rate(count: int, total: int) -> str:
    return f"{count / total:.2e} ({count:,} of {total:,})" if total else "n/a"


def model_card(result: dict[str, Any]) -> str:
    """The markdown model card, written from the measurements alone."""
    return "\n".join(
        [
            f"# Model card: `{result['model']}` face templates\n",
            f"Written by `{result['command']}` from the measurements in "
            f"`{result['model']}.json`; rerun the command rather than editing either file.\n",
            _model_section(result),
            _data_section(result["data"]),
            _operating_section(result["operating_point"], result["trade_off"]),
            _verification_section(result["verification"], result["model"]),
            _identification_section(result["identification"], result["operating_point"]),
            _caveats_section(),
        ]
    )


def _model_section(result: dict[str, Any]) -> str:
    return (
        "## Model\n\n"
        f"- Embedder: `{result['model']}`; templates are unit length and compared by cosine "
        "similarity (a candidate needs a similarity at or above the threshold).\n"
        f"- Detector: `{result['detector']}`.\n"
        "- Use: investigative leads in retrospective search of governed watchlists. A candidate "
        "is never an identification: a trained person reviews every one.\n"
    )


def _data_section(data: dict[str, Any]) -> str:
    box = ", ".join(f"{value:.3f}" for value in data["central_box"])
    lines = [
        "## Data\n",
        f"LFW at `{data['path']}`: {data['identities']:,} "
        f"identities, {data['embedded']:,} of {data['images']:,} images embedded; "
        f"{data['identities_with_several_images']:,} identities have two or more images.\n",
        "Each image's template is the detected face nearest the centre of the crop (LFW centres "
        f"its subject). Images with no face detected: **{data['fell_back_to_central_box']:,}**; "
        "for them the central box was embedded: the median detected box, as fractions of the "
        f"crop (left, top, right, bottom) {box}. They stay in every measurement below.\n",
    ]
    if data["unreadable"]:
        lines.append(f"Unreadable images, left out: {'; '.join(data['unreadable'])}.\n")
    problems = data["problems"]
    if problems:
        shown = "".join(f"- {problem}\n" for problem in problems[:PROBLEMS_SHOWN])
        more = (
            f"- ... and {len(problems) - PROBLEMS_SHOWN} more\n"
            if len(problems) > PROBLEMS_SHOWN
            else ""
        )
        lines.append(f"Problems in the folder:\n\n{shown}{more}")
    return "\n".join(lines)


def _operating_section(point: dict[str, Any], trade_off: list[dict[str, Any]]) -> str:
    def row(label: str, at: dict[str, Any]) -> list[object]:
        return [
            label,
            f"{at['threshold']:.4f}",
            _rate(at["false_matches"], at["impostor_pairs"]),
            _rate(at["false_non_matches"], at["genuine_pairs"]),
        ]

    target = point["target_false_match_rate"]
    rows = [row(f"**operating threshold** (FMR ≤ {target:g})", point)]
    rows += [row(f"FMR ≤ {at['target_false_match_rate']:g}", at) for at in trade_off]
    return (
        "## Operating threshold\n\n"
        "Rule: the lowest cosine similarity at which the false match rate (FMR) over every "
        f"pair of images of two different identities is at most {target:g}. A false match "
        "points police at the wrong person, so the threshold is set by false matches; the false "
        "non-match rate (FNMR, over every pair of images of one identity) is what that costs. "
        "**The threshold is chosen on LFW itself**, the data it is then measured on, so these "
        "rates are in-sample. Other targets, for comparison (`VIGIL_FACES_THRESHOLD` overrides "
        "the card):\n\n" + markdown_table(["", "threshold", "FMR", "FNMR"], rows)
    )


def _verification_section(verification: dict[str, Any], model: str) -> str:
    if not verification["pairs"]:
        return "## Verification\n\nNo usable pairs (see problems above).\n"
    at = verification["at_operating_threshold"]
    lines = [
        "## Verification (LFW pairs)\n",
        f"{verification['pairs']:,} pairs ({verification['same_pairs']:,} same person, "
        f"{verification['different_pairs']:,} different; {verification['dropped_pairs']} "
        f"dropped for missing images). AUC {verification['auc']:.5f}.\n",
    ]
    if folds := verification.get("ten_fold"):
        lines += [
            "LFW's protocol: for each View-2 fold, the threshold of best accuracy on the other "
            "folds is applied to it. This folder keeps only the View-2 pairs whose identities "
            "it holds, so the folds are not 300 + 300 and same-person pairs weigh more than in "
            "the full benchmark; the balanced accuracy (mean of the same-person and "
            "different-person rates) corrects for that.\n",
            f"**Accuracy {_pct(folds['mean_accuracy'])} ± {_pct(folds['std'])}** (mean ± "
            f"standard deviation over folds; standard error {_pct(folds['standard_error'])}); "
            f"balanced {_pct(folds['mean_balanced_accuracy'])}. Errors: "
            f"{folds['false_non_matches']} same-person pairs rejected, "
            f"{folds['false_matches']} different-person pairs accepted.\n",
        ]
        if model == "dlib-resnet-v1":
            lines.append(_dlib_anchor(folds["mean_accuracy"]))
        lines.append(
            markdown_table(
                [
                    "fold",
                    "pairs",
                    "threshold",
                    "accuracy",
                    "balanced",
                    "rejected same",
                    "accepted different",
                ],
                [
                    [
                        f["fold"],
                        f["pairs"],
                        f"{f['threshold']:.4f}",
                        _pct(f["accuracy"]),
                        _pct(f["balanced_accuracy"]),
                        f["false_non_matches"],
                        f["false_matches"],
                    ]
                    for f in folds["folds"]
                ],
            )
        )
    lines.append(
        f"At the operating threshold: accuracy {_pct(at['accuracy'])}, same-person pairs "
        f"accepted {_pct(at['same_accepted'])}, different-person pairs accepted "
        f"{_pct(at['different_accepted'])}.\n"
    )
    return "\n".join(lines)


def _dlib_anchor(accuracy: float) -> str:
    gap = 100 * (accuracy - DLIB_PUBLISHED_ACCURACY)
    return (
        f"Anchor: dlib reports {_pct(DLIB_PUBLISHED_ACCURACY)} on LFW for this model; this "
        f"measurement is {gap:+.2f} points from it. It differs in the pairs "
        "(this subset, weighted towards same-person pairs), the images (vigil's developer copy "
        "of LFW is the deep-funneled set), the detector (HOG, with the central-box fallback) "
        "and the comparison (vigil's unit-length templates by cosine similarity; dlib compares "
        "its raw descriptors by Euclidean distance).\n"
    )


def _identification_section(ident: dict[str, Any], point: dict[str, Any]) -> str:
    distractors = ident["non_mated"]["distractor_probes"]
    removed = ident["non_mated"]["mate_removed_probes"]
    expected = 1 - (1 - point["false_match_rate"]) ** (ident["gallery"] - 1)
    return (
        "## 1:N identification\n\n"
        f"Gallery: the first image of each of the {ident['gallery']:,} identities, "
        f"{ident['distractors']:,} of them single-image identities that act as distractors. "
        f"Mated probes: the other {ident['mated_probes']:,} images of the "
        f"{ident['mated_identities']:,} identities with several. Non-mated probes: each "
        "single-image identity searched with its own entry left out of the gallery, and each "
        "mated probe searched with its mate left out. LFW holds no more identities, so the "
        "gallery has hundreds of distractors, not the thousands of a real watchlist search; the "
        "FMR above (over millions of impostor pairs) is the better guide to larger galleries.\n\n"
        + markdown_table(
            ["measure", "value"],
            [
                *(
                    [f"mated probes: mate within the top {k}", _pct(rate)]
                    for k, rate in ident["rank"].items()
                ),
                [
                    "mated probes: mate first, averaged per identity",
                    _pct(ident["rank1_per_identity"]),
                ],
                [
                    "mated probes: mate first and at or above the threshold",
                    _pct(ident["identification_rate_at_threshold"]),
                ],
                [
                    "non-mated (distractor) probes with a candidate at the threshold",
                    _rate(distractors["false_positives"], distractors["probes"]),
                ],
                [
                    "non-mated (mate left out) probes with a candidate at the threshold",
                    _rate(removed["false_positives"], removed["probes"]),
                ],
            ],
        )
        + f"\nIf comparisons were independent, an FMR of {point['false_match_rate']:.2e} per "
        f"comparison would give a non-mated search of {ident['gallery'] - 1:,} entries a "
        f"candidate {_pct(expected)} of the time; the chance grows with the gallery, which is "
        "why every candidate goes to human review.\n"
    )


def _caveats_section() -> str:
    return (
        "## Caveats\n\n"
        "- LFW is news photos of public figures: mostly adult, male and white (a known "
        "demographic skew), near-frontal, well lit, centred. Error rates for other groups, and "
        "for CCTV, body-worn or low-resolution footage, are unmeasured here and expected to be "
        "worse.\n"
        "- The LFW authors warn that LFW results do not show fitness for commercial or deployed "
        "use; neither do these. Measure on data like the deployment's before relying on a "
        "threshold.\n"
        "- The operating threshold is chosen on the same images it is measured on.\n"
        "- LFW's identities are far fewer than a national watchlist's; false positives of 1:N "
        "search grow with gallery size.\n"
        "- LFW has no licence stated; research and evaluation use only.\n"
    )
