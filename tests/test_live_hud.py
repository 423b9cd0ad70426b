"""HUD overlays on synthetic streams rendered from Kodak photos: a game HUD over a moving scene
is strong evidence against an attack; a still camera, a bare walk, a broadcaster's corner logo
and a pillarboxed phone video are not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from test_live_cues_support import game, median_llr, news, photo, run, tripod, walk
from vigil.live.evidence.hud import HudConfig, HudFactory, HudSource

PHOTOS = (1, 5, 13, 23)


@pytest.fixture(scope="module")
def kodak(shared_data: Path) -> Path:
    return shared_data / "images" / "kodak24"


@pytest.mark.parametrize("index", PHOTOS)
def test_a_game_hud_is_strong_evidence_and_look_alikes_are_near_zero(
    kodak: Path, index: int
) -> None:
    image = photo(kodak, index)
    walking = walk(image, 10, 2)
    make = HudFactory()
    assert median_llr(lambda: make("s"), game(walking), 2) <= -3.5
    assert median_llr(lambda: make("s"), walking, 2) == pytest.approx(0.0)
    assert median_llr(lambda: make("s"), tripod(image, photo(kodak, 4), 10, 2), 2) == 0.0
    # A corner logo alone weighs at most the first element's 0.4.
    assert -0.4 <= median_llr(lambda: make("s"), news(walking), 2) <= 0.0


def test_the_game_view_shows_a_crosshair_and_the_hud_elements_where_they_are(
    kodak: Path,
) -> None:
    evidence = run(HudSource(), game(walk(photo(kodak, 13), 8, 2)), 2)
    last = evidence[-1]
    assert last.detail["crosshair"] is True
    corners = {(x + w / 2 < 0.5, y + h / 2 < 0.5) for x, y, w, h in last.detail["elements"]}
    # Minimap top left, health bar bottom left, ammo counter bottom right.
    assert {(True, True), (True, False), (False, False)} <= corners
    assert all(-4.0 <= e.llr <= 0.0 and 0.0 <= e.score <= 1.0 for e in evidence)


def test_a_static_scene_says_nothing_even_with_a_hud(kodak: Path) -> None:
    still = game([walk(photo(kodak, 5), 0.5, 2)[0]] * 16)
    evidence = run(HudSource(), still, 2)
    assert evidence and all(e.llr == 0.0 and e.detail["scene_change"] == 0.0 for e in evidence)


def _crosshair_only(frames: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for frame in frames:
        marked = frame.copy()
        cv2.line(marked, (300, 180), (340, 180), (0, 0, 0), 4)
        cv2.line(marked, (320, 160), (320, 200), (0, 0, 0), 4)
        cv2.line(marked, (302, 180), (338, 180), (255, 255, 255), 2)
        cv2.line(marked, (320, 162), (320, 198), (255, 255, 255), 2)
        out.append(marked)
    return out


def test_a_crosshair_alone_weighs_more_than_a_logo(kodak: Path) -> None:
    walking = walk(photo(kodak, 5), 10, 2)
    crosshair = median_llr(HudSource, _crosshair_only(walking), 2)
    logo = median_llr(HudSource, news(walking), 2)
    assert crosshair == pytest.approx(-2.5, abs=0.3)
    assert crosshair < logo - 1.5


def test_black_pillarbox_borders_are_not_overlays(kodak: Path) -> None:
    def pillarbox(frame: np.ndarray) -> np.ndarray:
        boxed = np.zeros_like(frame)
        boxed[:, 220:420] = cv2.resize(frame[:, 200:440], (200, 360))
        return boxed

    evidence = run(HudSource(), [pillarbox(f) for f in walk(photo(kodak, 5), 10, 2)], 2)
    content = evidence[-1].detail["content"]
    assert 80 < content[0] < 120 and content[2] < 110  # the middle strip, in 320-px units
    assert all(e.llr == 0.0 for e in evidence)


def test_a_clock_reset_restarts_the_window(kodak: Path) -> None:
    frames = game(walk(photo(kodak, 5), 5, 2))
    source = HudSource()
    first = run(source, frames, 2)
    again = run(source, frames, 2)  # stream time starts over at 0
    assert [e.t for e in again] == [e.t for e in first]
    assert again[-1].llr < -3


@pytest.mark.parametrize(
    "bad",
    [{"width": 32}, {"min_frames": 2}, {"change_low": 0.7}, {"llr_min": 1.0}],
)
def test_bad_configuration_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        HudConfig(**bad)  # type: ignore[arg-type]
