"""Stream metadata: gaming, airsoft, film and training labels lower the ratio a little, once a
second; neutral or missing metadata does not; bad metadata is refused with its key named."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from vigil.live.evidence.metadata import (
    MetadataConfig,
    MetadataFactory,
    StreamMetadata,
    look_alike_terms,
)
from vigil.live.samples import VideoSample

FRAME = np.zeros((36, 64, 3), np.uint8)


def _at(t: float) -> VideoSample:
    return VideoSample("s", t, FRAME, time.monotonic())


def _llr(metadata: dict[str, Any]) -> float:
    evidence = MetadataFactory({"s": metadata}.get)("s").observe(_at(0.0))
    assert evidence is not None
    return evidence.llr


@pytest.mark.parametrize(
    ("metadata", "llr"),
    [
        ({"category": "Call of Duty: Warzone"}, -0.75),
        ({"category": "IRL", "title": "airsoft milsim Sunday"}, -0.7),
        ({"game_name": "Counter-Strike 2", "title": "ranked grind", "tags": ["FPS"]}, -1.0),
        ({"title": "Official Trailer", "tags": "film, 4k"}, -0.7),
        ({"title": "SWAT police training day"}, -0.35),
        ({"category": "Just Chatting", "title": "walking downtown"}, 0.0),
        ({"category": "IRL", "title": "live from the shooting at the mall"}, 0.0),
        ({}, 0.0),
    ],
)
def test_look_alike_labels_lower_the_ratio_within_its_range(
    metadata: dict[str, Any], llr: float
) -> None:
    assert _llr(metadata) == pytest.approx(llr)


def test_the_detail_names_the_terms_by_field() -> None:
    hits = look_alike_terms(
        StreamMetadata(category="Escape from Tarkov", title="Let's play!", tags=("VR",))
    )
    assert hits.category == ["escape from tarkov", "tarkov"]
    assert hits.title == ["lets play"]
    assert hits.tags == ["vr"]


def test_it_reports_once_a_second_and_follows_a_title_change() -> None:
    registry: dict[str, dict[str, Any]] = {"s": {"title": "quiet walk"}}
    source = MetadataFactory(registry.get, MetadataConfig(interval_s=1.0))("s")
    said = [source.observe(_at(t / 2)) for t in range(6)]
    assert [e is not None for e in said] == [True, False, True, False, True, False]
    assert [e.llr for e in said if e is not None] == [0.0, 0.0, 0.0]
    registry["s"] = {"title": "airsoft game"}
    changed = source.observe(_at(3.0))
    assert changed is not None and changed.llr == pytest.approx(-0.7)
    assert changed.detail["title"] == ["airsoft", "game"]


def test_no_metadata_no_evidence() -> None:
    assert MetadataFactory({}.get)("s").observe(_at(0.0)) is None


@pytest.mark.parametrize(
    ("data", "key"),
    [({"title": 3}, "title"), ({"category": ["a"]}, "category"), ({"tags": [1, 2]}, "tags")],
)
def test_bad_metadata_names_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        StreamMetadata.from_mapping(data)
