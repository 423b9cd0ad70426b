"""Game text read by RapidOCR off synthetic frames: the HUD's words hit the lexicon, a news
logo and a bare scene do not, readings are spaced out in stream time, and the shared engine
serves several threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from test_live_cues_support import game, news, photo, run, walk
from vigil.live.evidence.gametext import GameTextConfig, GameTextFactory, match_lexicon
from vigil.ocr import read_text


@pytest.fixture(scope="module")
def walking(shared_data: Path) -> list[np.ndarray]:
    return walk(photo(shared_data / "images" / "kodak24", 13), 6, 2)


def test_the_hud_text_hits_the_lexicon_and_reaches_the_floor(walking: list[np.ndarray]) -> None:
    evidence = run(GameTextFactory()("s"), game(walking), 2)
    first = evidence[0]
    assert {"AMMO", "HP", "COUNTER"} <= set(first.detail["words"])
    assert first.llr == -3.0
    assert first.score > 0.9


def test_a_news_logo_and_a_bare_scene_read_as_no_game_text(walking: list[np.ndarray]) -> None:
    for frames in (news(walking), walking):
        evidence = run(GameTextFactory()("s"), frames, 2)
        assert evidence and all(e.llr == 0.0 and e.detail["words"] == [] for e in evidence)
    assert any(
        "N24" in line for line in run(GameTextFactory()("s"), news(walking), 2)[0].detail["lines"]
    )


def test_one_reading_per_interval_of_stream_time(walking: list[np.ndarray]) -> None:
    source = GameTextFactory(GameTextConfig(interval_s=2.5))("s")
    evidence = run(source, game(walking), 2)  # 6 s at 2 fps
    assert [e.t for e in evidence] == [0.0, 2.5, 5.0]


def test_the_shared_engine_reads_from_several_threads(walking: list[np.ndarray]) -> None:
    frames = game(walking)[:4]
    with ThreadPoolExecutor(max_workers=4) as pool:
        readings = list(pool.map(read_text, frames))
    for lines in readings:
        assert any("AMMO" in text for text, _ in lines)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("AMM0 30/120", {"AMMO", "COUNTER"}),
        ("HP100", {"HP"}),
        ("K1LLS 12", {"KILLS"}),
        ("Press [F] to reload", {"PRESS TO", "RELOAD"}),
        ("+100", {"POINTS"}),
        ("WAVE 3  LV12", {"WAVE", "LV"}),
        ("2024/05/12 14:03:22", set()),
        ("12/05/2024", set()),
        ("AXON BODY 3 X6031", set()),
        ("24/7 NEWS", set()),
        ("Breaking news: live from the scene", set()),
    ],
)
def test_the_lexicon(line: str, words: set[str]) -> None:
    assert set(match_lexicon([line])) == words


@pytest.mark.parametrize("bad", [{"interval_s": -1}, {"max_side": 10}, {"llr_min": 0.0}])
def test_bad_configuration_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GameTextConfig(**bad)  # type: ignore[arg-type]
