"""Template indexes of face search: exact top-k, HNSW recall against exact, removal, the auto
switch, and refusal of bad input."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from vigil.faces import index as index_module
from vigil.faces.index import (
    AutoIndex,
    ExactIndex,
    HnswIndex,
    TemplateIndex,
    build_index,
)

DIMENSION = 128


def unit(rows: np.ndarray) -> np.ndarray:
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


def clustered(identities: int, per_identity: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Templates like face descriptors: ``per_identity`` noisy images around each identity's
    centre (same identity ~0.9 cosine, others ~0.0-0.5), and the identity of each row."""
    rng = np.random.default_rng(seed)
    shared = unit(rng.standard_normal((1, DIMENSION)))
    centres = unit(0.6 * shared + rng.standard_normal((identities, DIMENSION)) / np.sqrt(DIMENSION))
    owners = np.repeat(np.arange(identities), per_identity)
    noise = 0.33 * rng.standard_normal((len(owners), DIMENSION)) / np.sqrt(DIMENSION)
    return unit(centres[owners] + noise), owners


def true_top_k(
    gallery: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int
) -> list[list[int]]:
    order = np.argsort(-(queries @ gallery.T), axis=1)[:, :k]
    return [ids[row].tolist() for row in order]


def ids_of(found: list[list[tuple[int, float]]]) -> list[list[int]]:
    return [[template_id for template_id, _ in hits] for hits in found]


def hnsw(dimension: int) -> HnswIndex:
    return HnswIndex(dimension)


def exact(dimension: int) -> ExactIndex:
    return ExactIndex(dimension)


def auto_hnsw(dimension: int) -> AutoIndex:
    """An AutoIndex that has already switched (first add past 0 templates)."""
    return AutoIndex(dimension, exact_max=0)


KINDS: list[Callable[[int], TemplateIndex]] = [exact, hnsw, auto_hnsw]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact search in many gallery blocks and query chunks, so the merging is exercised."""
    monkeypatch.setattr(index_module, "SCORE_BUDGET", 1024)
    monkeypatch.setattr(index_module, "QUERY_CHUNK", 7)


@pytest.mark.usefixtures("small_blocks")
def test_exact_returns_the_true_top_k_best_first() -> None:
    gallery = unit(np.random.default_rng(1).standard_normal((3500, DIMENSION)))
    ids = np.random.default_rng(2).permutation(10_000)[:3500].astype(np.int64)
    queries = unit(np.random.default_rng(3).standard_normal((20, DIMENSION)))
    index = ExactIndex(DIMENSION)
    index.add(ids, gallery)

    found = index.search(queries, 15, min_score=-1.0)

    assert ids_of(found) == true_top_k(gallery, ids, queries, 15)
    row_of = {int(template_id): row for row, template_id in enumerate(ids)}
    for hits, query in zip(found, queries, strict=True):
        scores = [score for _, score in hits]
        assert scores == sorted(scores, reverse=True)
        rows = [row_of[template_id] for template_id, _ in hits]
        assert scores == pytest.approx((gallery[rows] @ query).tolist(), abs=1e-5)


@pytest.mark.usefixtures("small_blocks")
def test_exact_honours_min_score() -> None:
    templates, owners = clustered(identities=200, per_identity=5, seed=4)
    ids = np.arange(len(templates), dtype=np.int64)
    index = ExactIndex(DIMENSION)
    index.add(ids, templates)
    probes, probe_owners = clustered(identities=200, per_identity=1, seed=4)

    found = index.search(probes[:30], 10, min_score=0.7)

    truth = true_top_k(templates, ids, probes[:30], 10)
    for hits, best, query in zip(found, truth, probes[:30], strict=True):
        above = [i for i in best if float(templates[i] @ query) >= 0.7]
        assert [i for i, _ in hits] == above
        assert all(score >= 0.7 for _, score in hits)
    # Genuine pairs sit near 0.9 and impostors well below 0.7: only the same person is left.
    assert all(
        set(owners[[i for i, _ in hits]]) == {owner}
        for hits, owner in zip(found, probe_owners[:30], strict=True)
    )


@pytest.mark.parametrize("make", KINDS)
def test_k_beyond_the_gallery_returns_every_template(make: Callable[[int], TemplateIndex]) -> None:
    templates = unit(np.random.default_rng(5).standard_normal((6, DIMENSION)))
    index = make(DIMENSION)
    index.add(np.arange(6), templates)

    (hits,) = index.search(templates[:1], 50, min_score=-1.0)

    assert sorted(i for i, _ in hits) == list(range(6))
    assert hits[0][0] == 0
    assert hits[0][1] == pytest.approx(1.0)


@pytest.mark.parametrize("make", KINDS)
def test_an_empty_index_finds_nothing(make: Callable[[int], TemplateIndex]) -> None:
    index = make(DIMENSION)
    queries = unit(np.random.default_rng(6).standard_normal((3, DIMENSION)))
    assert index.search(queries, 5, min_score=-1.0) == [[], [], []]
    assert len(index) == 0


def test_hnsw_matches_exact_on_clustered_templates() -> None:
    templates, _ = clustered(identities=1000, per_identity=4, seed=7)
    ids = np.random.default_rng(8).permutation(1_000_000)[: len(templates)].astype(np.int64)
    probes, _ = clustered(identities=1000, per_identity=1, seed=7)
    probes = probes[np.random.default_rng(9).choice(1000, size=500, replace=False)]
    approximate, brute = HnswIndex(DIMENSION), ExactIndex(DIMENSION)
    approximate.add(ids, templates)
    brute.add(ids, templates)

    found = ids_of(approximate.search(probes, 10, min_score=-1.0))
    truth = ids_of(brute.search(probes, 10, min_score=-1.0))

    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.99
    assert truth == true_top_k(templates, ids, probes, 10)


@pytest.mark.parametrize("make", KINDS)
def test_removed_templates_are_never_returned(make: Callable[[int], TemplateIndex]) -> None:
    templates, owners = clustered(identities=300, per_identity=4, seed=10)
    ids = np.arange(len(templates), dtype=np.int64) * 7
    index = make(DIMENSION)
    index.add(ids, templates)
    # A whole identity and a scattering of others: the probe's nearest templates all go.
    gone = ids[(owners == 3) | (np.arange(len(ids)) % 11 == 0)]

    index.remove(gone)

    assert len(index) == len(ids) - len(gone)
    found = index.search(templates, 10, min_score=-1.0)
    returned = {i for hits in found for i, _ in hits}
    assert not returned & set(gone.tolist())
    assert all(len(hits) == 10 for hits in found)
    kept = ~np.isin(ids, gone)
    assert ids_of(index.search(templates[owners == 3], 3, -1.0)) == true_top_k(
        templates[kept], ids[kept], templates[owners == 3], 3
    )


@pytest.mark.parametrize("make", KINDS)
def test_a_removed_id_can_be_added_again(make: Callable[[int], TemplateIndex]) -> None:
    templates = unit(np.random.default_rng(11).standard_normal((40, DIMENSION)))
    index = make(DIMENSION)
    index.add(np.arange(20), templates[:20])
    index.remove(np.array([4]))

    index.add(np.array([4]), templates[30:31])

    ((found_id, score),) = index.search(templates[30:31], 1, min_score=-1.0)[0]
    assert found_id == 4
    assert score == pytest.approx(1.0)
    assert len(index) == 20


def test_hnsw_rebuilds_once_tombstones_pass_their_share() -> None:
    templates = unit(np.random.default_rng(12).standard_normal((500, DIMENSION)))
    index = HnswIndex(DIMENSION, max_tombstone_share=0.2)
    index.add(np.arange(500), templates)

    index.remove(np.arange(100))
    assert index.tombstones == 100
    index.remove(np.array([100]))

    assert index.tombstones == 0
    assert len(index) == 399
    live_ids, live_vectors = index.items()
    assert sorted(live_ids.tolist()) == list(range(101, 500))
    np.testing.assert_array_equal(live_vectors, templates[live_ids])
    assert ids_of(index.search(templates[200:210], 1, -1.0)) == [[i] for i in range(200, 210)]


def test_removing_an_unknown_id_fails_and_removes_nothing() -> None:
    templates = unit(np.random.default_rng(13).standard_normal((10, DIMENSION)))
    for index in (ExactIndex(DIMENSION), HnswIndex(DIMENSION)):
        index.add(np.arange(10), templates)
        with pytest.raises(KeyError, match="99"):
            index.remove(np.array([2, 99]))
        assert len(index) == 10


def test_auto_switches_to_hnsw_past_exact_max_and_stays() -> None:
    templates, _ = clustered(identities=60, per_identity=2, seed=14)
    ids = np.arange(len(templates), dtype=np.int64) + 1000
    index = AutoIndex(DIMENSION, exact_max=100)
    index.add(ids[:100], templates[:100])
    kinds = [index.kind]
    before = index.search(templates[:20], 5, min_score=-1.0)

    index.add(ids[100:101], templates[100:101])

    kinds.append(index.kind)
    assert kinds == ["exact", "hnsw"]
    assert len(index) == 101
    assert ids_of(index.search(templates[:20], 5, -1.0)) == ids_of(before)
    index.remove(ids[:50])
    assert index.kind == "hnsw"
    assert len(index) == 51
    stored, vectors = index.items()
    assert sorted(stored.tolist()) == ids[50:101].tolist()
    np.testing.assert_array_equal(vectors, templates[stored - 1000])


def test_auto_stays_exact_when_a_failed_add_would_have_crossed() -> None:
    templates = unit(np.random.default_rng(15).standard_normal((6, DIMENSION)))
    index = AutoIndex(DIMENSION, exact_max=4)
    index.add(np.arange(4), templates[:4])
    with pytest.raises(ValueError, match="already in the index"):
        index.add(np.array([3, 4]), templates[4:6])
    assert (index.kind, len(index)) == ("exact", 4)


@pytest.mark.parametrize(
    ("kind", "expected"), [("exact", ExactIndex), ("hnsw", HnswIndex), ("auto", AutoIndex)]
)
def test_build_index_gives_the_named_kind(kind: str, expected: type) -> None:
    index = build_index(kind, 64, exact_max=10)  # type: ignore[arg-type]
    assert isinstance(index, expected)
    assert index.dimension == 64


def test_build_index_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown index kind 'annoy'"):
        build_index("annoy", 64, exact_max=10)  # type: ignore[arg-type]


def _good(rows: int = 3) -> np.ndarray:
    return unit(np.random.default_rng(16).standard_normal((rows, DIMENSION)))


@pytest.mark.parametrize("make", KINDS)
@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (np.arange(3), _good()[:, :64], r"shape \(n, 128\)"),
        (np.arange(1), _good()[0], r"shape \(n, 128\)"),
        (np.arange(3), (_good() * 100).astype(np.int32), "floating point"),
        (np.arange(3), np.where(np.eye(3, DIMENSION) > 0, np.nan, _good()), "row 0 has NaN"),
        (np.arange(3), _good() * 2, "unit length"),
        (np.arange(3), np.zeros((3, DIMENSION), np.float32), "unit length"),
        (np.arange(2), _good(), "2 ids for 3 vectors"),
        (np.array([1, 1, 2]), _good(), "distinct"),
        (np.array([-1, 1, 2]), _good(), "non-negative"),
        (np.array([0.0, 1.0, 2.0]), _good(), "integer"),
        (np.arange(3).reshape(3, 1), _good(), "1-D integer"),
    ],
)
def test_bad_additions_are_refused(
    make: Callable[[int], TemplateIndex], ids: np.ndarray, vectors: np.ndarray, message: str
) -> None:
    index = make(DIMENSION)
    with pytest.raises(ValueError, match=message):
        index.add(ids, vectors)
    assert len(index) == 0


@pytest.mark.parametrize("make", KINDS)
def test_adding_an_id_already_present_is_refused(make: Callable[[int], TemplateIndex]) -> None:
    index = make(DIMENSION)
    index.add(np.arange(3), _good())
    with pytest.raises(ValueError, match=r"already in the index: \[2\]"):
        index.add(np.array([5, 2]), _good(2))
    assert len(index) == 3


@pytest.mark.parametrize("make", KINDS)
@pytest.mark.parametrize(
    ("queries", "k", "min_score", "message"),
    [
        (_good()[:, :10], 5, 0.0, r"queries must have shape \(n, 128\)"),
        (_good(), 0, 0.0, "k must be a positive integer"),
        (_good(), 2.5, 0.0, "k must be a positive integer"),
        (_good(), 5, float("nan"), "min_score must be a finite number"),
        (_good() * 3, 5, 0.0, "queries must be unit length"),
    ],
)
def test_bad_searches_are_refused(
    make: Callable[[int], TemplateIndex],
    queries: np.ndarray,
    k: int,
    min_score: float,
    message: str,
) -> None:
    index = make(DIMENSION)
    index.add(np.arange(3), _good())
    with pytest.raises(ValueError, match=message):
        index.search(queries, k, min_score)


def test_bad_index_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="dimension must be positive"):
        ExactIndex(0)
    with pytest.raises(ValueError, match="m >= 2"):
        HnswIndex(DIMENSION, m=1)
    with pytest.raises(ValueError, match="max_tombstone_share"):
        HnswIndex(DIMENSION, max_tombstone_share=0.0)
    with pytest.raises(ValueError, match="exact_max must be >= 0"):
        AutoIndex(DIMENSION, exact_max=-1)


@pytest.mark.parametrize("make", KINDS)
def test_concurrent_adds_and_searches_keep_every_template(
    make: Callable[[int], TemplateIndex],
) -> None:
    templates = unit(np.random.default_rng(17).standard_normal((800, DIMENSION)))
    index = make(DIMENSION)
    errors: list[BaseException] = []

    def add_range(first: int) -> None:
        try:
            for start in range(first, first + 200, 20):
                index.add(np.arange(start, start + 20), templates[start : start + 20])
                index.search(templates[start : start + 1], 3, min_score=-1.0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=add_range, args=(first,)) for first in (0, 200, 400, 600)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(index) == 800
    assert ids_of(index.search(templates[::50], 1, -1.0)) == [[i] for i in range(0, 800, 50)]
