"""Ego-motion on synthetic streams rendered from Kodak photos: a hand-held walk moves more
irregularly than a broadcast pan, a tripod or a still screen, and the walking bob is measured
only when the frame rate can resolve it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_live_cues_support import WIDTH, median_llr, pan, photo, run, samples, tripod, walk
from vigil.live.evidence.motion import EgoMotionConfig, EgoMotionFactory, EgoMotionSource

PHOTOS = (5, 13, 23)


@pytest.fixture(scope="module")
def kodak(shared_data: Path) -> Path:
    return shared_data / "images" / "kodak24"


@pytest.mark.parametrize("index", PHOTOS)
def test_a_walk_ranks_above_a_pan_above_a_tripod_and_a_still_screen(
    kodak: Path, index: int
) -> None:
    image, thing = photo(kodak, index), photo(kodak, 4)
    make = EgoMotionFactory()
    walking = median_llr(lambda: make("s"), walk(image, 10, 2), 2)
    panning = median_llr(lambda: make("s"), pan(image, 10, 2), 2)
    still = median_llr(lambda: make("s"), tripod(image, thing, 10, 2), 2)
    screen = median_llr(lambda: make("s"), [walk(image, 0.5, 2)[0]] * 20, 2)
    assert walking > 0.2
    assert walking > panning + 0.3
    assert panning > still
    assert still < -0.4 and screen < -0.4


def test_evidence_stays_in_its_range_and_explains_the_tripod_scene(kodak: Path) -> None:
    image = photo(kodak, 5)
    for frames in (walk(image, 8, 2), tripod(image, photo(kodak, 4), 8, 2)):
        evidence = run(EgoMotionSource(), frames, 2)
        assert all(-0.5 <= e.llr <= 1.0 and 0.0 <= e.score <= 1.0 for e in evidence)
    # The object crossing the still scene is an outlier: the global model (no motion) explains
    # most tracks and the global speed stays near zero.
    last = evidence[-1].detail
    assert last["speed"] < 0.005 and last["explained"] > 0.8


def test_the_walking_bob_is_measured_only_when_the_rate_resolves_it(kodak: Path) -> None:
    image = photo(kodak, 13)
    at_ten = run(EgoMotionSource(), walk(image, 8, 10), 10)
    at_two = run(EgoMotionSource(), walk(image, 8, 2), 2)
    panned = run(EgoMotionSource(), pan(image, 8, 10), 10)
    assert np.median([e.detail["bob"] for e in at_ten[-20:]]) > 0.1
    assert all(e.detail["bob"] is None for e in at_two)
    assert max(e.detail["bob"] for e in panned[-20:]) < 0.05


def test_max_rate_caps_the_frames_analysed(kodak: Path) -> None:
    frames = walk(photo(kodak, 5), 4, 10)
    capped = EgoMotionSource(EgoMotionConfig(max_rate_hz=2.0))
    evidence = run(capped, frames, 10)
    assert evidence and all(e.detail["bob"] is None for e in evidence)
    assert len(evidence) <= 4 * 2


def test_a_resolution_change_restarts_the_history(kodak: Path) -> None:
    source = EgoMotionSource()
    frames = walk(photo(kodak, 5), 3, 2)
    said = [source.observe(s) for s in samples(frames, 2)]
    assert said[-1] is not None
    smaller = next(samples([frames[0][::2, ::2].copy()], 2))
    later = type(smaller)(smaller.stream_id, 10.0, smaller.rgb, smaller.received)
    assert source.observe(later) is None
    assert later.rgb.shape[1] == WIDTH // 2


def test_a_clock_reset_restarts_the_history(kodak: Path) -> None:
    frames = walk(photo(kodak, 5), 4, 2)
    source = EgoMotionSource()
    first = run(source, frames, 2)
    again = run(source, frames, 2)  # stream time starts over at 0
    assert first and [e.t for e in again] == [e.t for e in first]


def test_a_slideshow_of_unrelated_pictures_gives_no_motion_evidence(kodak: Path) -> None:
    slides = [walk(photo(kodak, i), 0.5, 2)[0] for i in range(1, 13)]
    assert run(EgoMotionSource(), slides, 2) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"width": 32},
        {"min_pairs": 1},
        {"max_rate_hz": 0},
        {"bob_band": (3.0, 2.0)},
        {"llr_min": 0.5},
    ],
)
def test_bad_configuration_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EgoMotionConfig(**bad)  # type: ignore[arg-type]
