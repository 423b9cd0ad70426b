"""Where enrolled face templates are searched: nearest templates to a probe by cosine similarity.

Templates are unit-length float32 rows (see :class:`vigil.faces.types.Embedder`), so cosine
similarity is the inner product. Every index offers the same small interface,
:class:`TemplateIndex` (build with ``add``/``remove``, query with ``search``), in the manner of
python-threatexchange's signal indexes:

* :class:`ExactIndex`: numpy brute force over the whole gallery in bounded chunks. Exact; cost
  grows linearly with the gallery (one probe on one core: ~2.7 ms at 100k templates, ~34 ms
  at 1M).
* :class:`HnswIndex`: faiss ``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``. Approximate; with
  the defaults one probe at 1M takes ~4.2 ms on one core and returns 99.3 % of the exact
  top 10 (``bench/faces_index.py``, ``bench/results/faces_index.md``). Building the graph is
  the slow part: ~10-15 minutes for 1M templates on 2 cores.
* :class:`AutoIndex`: exact while the gallery is small (exact results cost little there),
  migrating once to HNSW when an ``add`` takes it past ``exact_max``.

:func:`build_index` picks one from ``FacesSettings.faces_index`` and ``faces_exact_max``.

Thread-safety: each index holds one lock around every mutation and search, so an index may be
shared between threads; searches on one index run one at a time.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Literal, Protocol

import faiss
import numpy as np

#: Rows further than this from unit length are refused: the inner product would not be cosine.
UNIT_TOLERANCE = 1e-3
#: Exact search scores at most this many (query, template) pairs at a time (16 MB of float32).
SCORE_BUDGET = 1 << 22
#: Exact search takes queries this many at a time.
QUERY_CHUNK = 256
#: HNSW defaults, chosen by measurement on 100k and 1M clustered 128-d templates
#: (``bench/results/faces_index.md``). At 100k, M=32 with efConstruction=160 reaches a given
#: recall with the smallest efSearch; at 1M, efSearch=768 is the least of those measured with
#: recall@10 against exact >= 0.99 (0.993; 512 gives 0.987), at ~4.2 ms p50 per probe.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 160
HNSW_EF_SEARCH = 768
#: HNSW rebuilds itself once this share of its stored templates are removed ones.
HNSW_MAX_TOMBSTONE_SHARE = 0.2

Hit = tuple[int, float]


class TemplateIndex(Protocol):
    """Templates under int64 ids, searched by cosine similarity (inner product)."""

    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Adds ``vectors`` ``(n, dimension)`` under ``ids`` ``(n,)``; ids must be new."""
        ...

    def remove(self, ids: np.ndarray) -> None:
        """Removes the templates under ``ids``; every id must be present."""
        ...

    def search(self, vectors: np.ndarray, k: int, min_score: float) -> list[list[Hit]]:
        """For each query row: at most ``k`` ``(id, score)``, best first, score >= min_score."""
        ...


def build_index(
    kind: Literal["auto", "exact", "hnsw"], dimension: int, exact_max: int
) -> TemplateIndex:
    """The index ``FacesSettings.faces_index`` names (``exact_max``: ``faces_exact_max``)."""
    if kind == "exact":
        return ExactIndex(dimension)
    if kind == "hnsw":
        return HnswIndex(dimension)
    if kind == "auto":
        return AutoIndex(dimension, exact_max)
    raise ValueError(f"unknown index kind {kind!r}: expected 'auto', 'exact' or 'hnsw'")


def check_vectors(vectors: np.ndarray, dimension: int, what: str = "vectors") -> np.ndarray:
    """``vectors`` as C-contiguous float32 ``(n, dimension)`` unit-length rows, or ValueError."""
    array = np.asarray(vectors)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{what} must be floating point (float32 templates), got {array.dtype}")
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"{what} must have shape (n, {dimension}), got {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ValueError(f"{what} must be finite: row {bad} has NaN or infinity")
    norms = np.linalg.norm(array, axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if off.size:
        raise ValueError(
            f"{what} must be unit length (cosine = inner product): row {int(off[0])} has norm "
            f"{float(norms[off[0]]):.4f}; normalise the templates first"
        )
    return array


def check_ids(ids: np.ndarray, count: int | None = None) -> np.ndarray:
    """``ids`` as a 1-D int64 array of distinct non-negative ids (``count`` long), or ValueError."""
    array = np.asarray(ids)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D integer array, got {array.dtype} {array.shape}")
    array = array.astype(np.int64, copy=False)
    if count is not None and array.size != count:
        raise ValueError(f"got {array.size} ids for {count} vectors")
    if array.size and int(array.min()) < 0:
        raise ValueError("ids must be non-negative")
    if np.unique(array).size != array.size:
        raise ValueError("ids must be distinct")
    return array


def check_query(k: int, min_score: float) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not math.isfinite(min_score):
        raise ValueError(f"min_score must be a finite number, got {min_score!r}")


def hits(scores: np.ndarray, ids: np.ndarray, min_score: float) -> list[list[Hit]]:
    """Per row, ``(id, score)`` pairs with a real id and score >= min_score; rows come sorted."""
    keep = (ids >= 0) & (scores >= min_score)
    return [
        [(int(i), float(s)) for i, s in zip(row_ids[row_keep], row_scores[row_keep], strict=True)]
        for row_ids, row_scores, row_keep in zip(ids, scores, keep, strict=True)
    ]


def _missing(known: dict[int, int], ids: np.ndarray) -> None:
    absent = [int(i) for i in ids if int(i) not in known]
    if absent:
        raise KeyError(f"ids not in the index: {absent[:10]}{' ...' if len(absent) > 10 else ''}")


def _present(known: dict[int, int], ids: np.ndarray) -> None:
    taken = [int(i) for i in ids if int(i) in known]
    if taken:
        raise ValueError(
            f"ids already in the index: {taken[:10]}{' ...' if len(taken) > 10 else ''}"
        )


def _merge_top_k(
    best_scores: np.ndarray, best_ids: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best per row of the running best and a new block of scores (unsorted)."""
    if scores.shape[1] > k:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        scores, ids = np.take_along_axis(scores, top, axis=1), ids[top]
    else:
        ids = np.broadcast_to(ids, scores.shape)
    all_scores = np.concatenate([best_scores, scores], axis=1)
    all_ids = np.concatenate([best_ids, ids], axis=1)
    top = np.argpartition(-all_scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(all_scores, top, axis=1), np.take_along_axis(all_ids, top, axis=1)


class ExactIndex:
    """Brute force: every query scored against every template, in blocks of at most
    :data:`SCORE_BUDGET` scores so memory stays bounded. Removal moves the last row into the
    hole, so the stored rows stay dense."""

    def __init__(self, dimension: int) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self._dimension = dimension
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._rows: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = check_vectors(vectors, self._dimension)
        ids = check_ids(ids, len(vectors))
        with self._lock:
            _present(self._rows, ids)
            size = len(self._rows)
            self._reserve(size + len(ids))
            self._vectors[size : size + len(ids)] = vectors
            self._ids[size : size + len(ids)] = ids
            self._rows.update(zip(ids.tolist(), range(size, size + len(ids)), strict=True))

    def remove(self, ids: np.ndarray) -> None:
        ids = check_ids(ids)
        with self._lock:
            _missing(self._rows, ids)
            for template_id in ids.tolist():
                row = self._rows.pop(template_id)
                last = len(self._rows)
                if row != last:
                    self._vectors[row] = self._vectors[last]
                    self._ids[row] = self._ids[last]
                    self._rows[int(self._ids[row])] = row

    def search(self, vectors: np.ndarray, k: int, min_score: float) -> list[list[Hit]]:
        check_query(k, min_score)
        queries = check_vectors(vectors, self._dimension, "queries")
        found: list[list[Hit]] = []
        with self._lock:
            for start in range(0, len(queries), QUERY_CHUNK):
                scores, ids = self._top_k(queries[start : start + QUERY_CHUNK], k)
                found.extend(hits(scores, ids, min_score))
        return found

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the stored ids ``(n,)`` and templates ``(n, dimension)``."""
        with self._lock:
            size = len(self._rows)
            return self._ids[:size].copy(), self._vectors[:size].copy()

    def _reserve(self, size: int) -> None:
        """Grows storage geometrically so that one-at-a-time adds stay amortised O(1)."""
        if size <= len(self._ids):
            return
        capacity = max(size, 2 * len(self._ids))
        vectors = np.empty((capacity, self._dimension), dtype=np.float32)
        ids = np.empty(capacity, dtype=np.int64)
        used = len(self._rows)
        vectors[:used] = self._vectors[:used]
        ids[:used] = self._ids[:used]
        self._vectors, self._ids = vectors, ids

    def _top_k(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` (scores, ids) per query, sorted best first; -1 ids pad short galleries."""
        best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        best_ids = np.full((len(queries), k), -1, dtype=np.int64)
        size = len(self._rows)
        block = max(1024, SCORE_BUDGET // len(queries))
        for start in range(0, size, block):
            stop = min(start + block, size)
            scores = queries @ self._vectors[start:stop].T
            best_scores, best_ids = _merge_top_k(
                best_scores, best_ids, scores, self._ids[start:stop], k
            )
        order = np.argsort(-best_scores, axis=1, kind="stable")
        return np.take_along_axis(best_scores, order, axis=1), np.take_along_axis(
            best_ids, order, axis=1
        )


class HnswIndex:
    """faiss HNSW graph over the templates (inner product), approximate.

    faiss labels are positions in insertion order; ``_ids`` maps them to template ids.
    HNSW cannot delete a node, so ``remove`` leaves a tombstone: the node stays in the graph
    (still routing searches) but a faiss ``IDSelectorBitmap`` of live positions keeps it out
    of every result. Filtering inside the search, rather than over-fetching ``k`` plus some
    and dropping removed hits afterwards, always yields ``k`` live hits when they exist, even
    when all of a probe's nearest templates were removed together (one identity deleted from a
    watchlist). Once tombstones exceed ``max_tombstone_share`` of the stored nodes the graph is
    rebuilt from the live templates (under the lock: searches wait for it, ~10-15 minutes at
    1M templates on 2 cores).
    """

    _index: Any
    _ids: np.ndarray
    _alive: np.ndarray
    _positions: dict[int, int]
    #: The selector holds a raw pointer into the bitmap: both are kept together.
    _selector: tuple[Any, np.ndarray] | None

    def __init__(
        self,
        dimension: int,
        *,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        max_tombstone_share: float = HNSW_MAX_TOMBSTONE_SHARE,
    ) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if m < 2 or ef_construction < 1 or ef_search < 1:
            raise ValueError("HNSW needs m >= 2, ef_construction >= 1 and ef_search >= 1")
        if not 0.0 < max_tombstone_share <= 1.0:
            raise ValueError("max_tombstone_share must be in (0, 1]")
        self._dimension = dimension
        self._m = m
        self._ef_construction = ef_construction
        self.ef_search = ef_search
        self._max_tombstone_share = max_tombstone_share
        self._lock = threading.Lock()
        self._reset()

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def tombstones(self) -> int:
        """Removed templates still stored in the graph (until the next rebuild)."""
        return len(self._ids) - len(self._positions)

    def __len__(self) -> int:
        return len(self._positions)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = check_vectors(vectors, self._dimension)
        ids = check_ids(ids, len(vectors))
        with self._lock:
            _present(self._positions, ids)
            self._append(ids, vectors)

    def remove(self, ids: np.ndarray) -> None:
        ids = check_ids(ids)
        with self._lock:
            _missing(self._positions, ids)
            for template_id in ids.tolist():
                self._alive[self._positions.pop(template_id)] = False
            self._selector = None
            if self.tombstones > self._max_tombstone_share * len(self._ids):
                self._rebuild()

    def search(self, vectors: np.ndarray, k: int, min_score: float) -> list[list[Hit]]:
        check_query(k, min_score)
        queries = check_vectors(vectors, self._dimension, "queries")
        with self._lock:
            if not self._positions:
                return [[] for _ in range(len(queries))]
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # not in faiss's stub
            # HNSW keeps efSearch candidates; fewer than k would cap the answer below k.
            params.efSearch = max(self.ef_search, k)
            if self.tombstones:
                params.sel = self._live_selector()
            scores, positions = self._index.search(queries, k, params=params)
            ids = np.where(positions >= 0, self._ids[positions], -1)
        return hits(scores, ids, min_score)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the live ids ``(n,)`` and templates ``(n, dimension)``."""
        with self._lock:
            return self._live_items()

    def _reset(self) -> None:
        self._index = faiss.IndexHNSWFlat(self._dimension, self._m, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = self._ef_construction
        self._ids = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self._positions = {}
        self._selector = None

    def _append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        start = self._index.ntotal
        self._index.add(vectors)
        self._ids = np.concatenate([self._ids, ids])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        self._positions.update(zip(ids.tolist(), range(start, start + len(ids)), strict=True))
        self._selector = None

    def _live_items(self) -> tuple[np.ndarray, np.ndarray]:
        live = np.flatnonzero(self._alive)
        vectors = self._index.reconstruct_n(0, self._index.ntotal)[live]
        return self._ids[live].copy(), vectors

    def _rebuild(self) -> None:
        ids, vectors = self._live_items()
        self._reset()
        self._append(ids, vectors)

    def _live_selector(self) -> Any:
        """The faiss selector of live positions, cached until the next add or remove."""
        if self._selector is None:
            bitmap = np.packbits(self._alive, bitorder="little")
            self._selector = (faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap)
        return self._selector[0]


class AutoIndex:
    """Exact search while the gallery holds at most ``exact_max`` templates; the ``add`` that
    takes it past ``exact_max`` moves every template into an :class:`HnswIndex`, once. It does
    not move back when removals shrink the gallery again: a migration costs a full build, and
    a gallery hovering around ``exact_max`` would otherwise rebuild back and forth. The
    migrating ``add`` holds the lock while the graph builds (~20-40 s per 100k templates on 2
    cores)."""

    def __init__(self, dimension: int, exact_max: int) -> None:
        if exact_max < 0:
            raise ValueError(f"exact_max must be >= 0, got {exact_max}")
        self._exact_max = exact_max
        self._inner: ExactIndex | HnswIndex = ExactIndex(dimension)
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def kind(self) -> Literal["exact", "hnsw"]:
        """Which index serves searches now."""
        return "exact" if isinstance(self._inner, ExactIndex) else "hnsw"

    def __len__(self) -> int:
        return len(self._inner)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._lock:
            self._inner.add(ids, vectors)
            if isinstance(self._inner, ExactIndex) and len(self._inner) > self._exact_max:
                hnsw = HnswIndex(self._inner.dimension)
                hnsw.add(*self._inner.items())
                self._inner = hnsw

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            self._inner.remove(ids)

    def search(self, vectors: np.ndarray, k: int, min_score: float) -> list[list[Hit]]:
        with self._lock:
            return self._inner.search(vectors, k, min_score)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the stored ids ``(n,)`` and templates ``(n, dimension)``."""
        with self._lock:
            return self._inner.items()
