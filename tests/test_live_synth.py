"""Synthetic live test streams: built from the shared data, decoded back with PyAV and checked
against their manifests; played as real live streams and received at real time."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np
import pytest

from vigil.live.groundtruth import (
    GroundTruthError,
    Manifest,
    load_folder,
    load_labels,
    load_manifest,
    probe_duration,
)
from vigil.live.playout import parse_target, play
from vigil.live.synth import (
    FAST_SIZE,
    SCENARIOS,
    Assets,
    assets_from_lists,
    build_catalogue,
    build_stream,
    held_out_assets,
    held_out_by_dataset,
    held_out_lists,
    pistol_cutout,
    scenario,
)
from vigil.net import free_local_port

SECONDS = 12.0


@dataclass(frozen=True)
class Decoded:
    """A decoded stream: frames (grey and colour) and mono audio, times from the first frame."""

    times: np.ndarray
    frames: np.ndarray  # n x h x w x 3 uint8
    audio: np.ndarray
    audio_rate: int

    def at(self, t: float) -> np.ndarray:
        return np.asarray(self.frames[int(np.searchsorted(self.times, t - 1e-6))])

    def rms(self, start: float, stop: float) -> float:
        part = self.audio[int(start * self.audio_rate) : int(stop * self.audio_rate)]
        return float(np.sqrt(np.mean(np.square(part, dtype=np.float64))))


def decode(path: Path) -> Decoded:
    times: list[float] = []
    frames: list[np.ndarray] = []
    chunks: list[tuple[float, np.ndarray]] = []
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        for frame in container.decode(video, audio):
            if isinstance(frame, av.VideoFrame):
                times.append(float(frame.time or 0.0))
                frames.append(frame.to_ndarray(format="rgb24"))
            elif isinstance(frame, av.AudioFrame):
                chunks.append((float(frame.time or 0.0), frame.to_ndarray().mean(axis=0)))
        rate = audio.rate
    zero = times[0]
    # Audio is placed on the video's clock: the encoder's priming samples come before frame 0.
    audio_start = chunks[0][0] - zero
    samples = np.concatenate([chunk for _, chunk in chunks]).astype(np.float32)
    skip = round(-audio_start * rate)
    assert skip >= 0
    return Decoded(np.asarray(times) - zero, np.stack(frames), samples[skip:], rate)


@pytest.fixture(scope="module")
def assets(shared_data: Path) -> Assets:
    return held_out_assets(shared_data)


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory, assets: Assets) -> Path:
    folder = tmp_path_factory.mktemp("streams")
    for name in ("attack", "game_fps"):
        spec = scenario(name, seed=3, duration_s=SECONDS, size=FAST_SIZE)
        build_stream(spec, folder / f"{name}.ts", assets)
    return folder


@pytest.fixture(scope="module")
def attack(streams: Path) -> Manifest:
    return load_manifest(streams / "attack.json")


@pytest.fixture(scope="module")
def game(streams: Path) -> Manifest:
    return load_manifest(streams / "game_fps.json")


@pytest.fixture(scope="module")
def attack_decoded(attack: Manifest) -> Decoded:
    return decode(Path(attack.video))


def cue(manifest: Manifest, kind: str) -> tuple[float, float, dict[str, Any]]:
    (found,) = [c for c in manifest.cues if c.kind == kind]
    return found.onset_s, found.offset_s, found.detail


def test_attack_stream_has_the_promised_length_and_labels(
    attack: Manifest, attack_decoded: Decoded
) -> None:
    assert attack.synthetic and attack.positive and attack.category == "attack"
    weapon_on, _, _ = cue(attack, "weapon")
    shots_on, _, _ = cue(attack, "gunshot")
    walk_on, _, _ = cue(attack, "walk")
    assert attack.onset_s == min(weapon_on, shots_on)
    assert 0 < walk_on < weapon_on < shots_on < SECONDS
    assert attack.duration_s == SECONDS
    frames = attack_decoded.frames
    assert frames.shape[1:] == (FAST_SIZE[1], FAST_SIZE[0], 3)
    assert abs(len(frames) - SECONDS * 30) <= 1
    assert attack_decoded.times[-1] == pytest.approx(SECONDS - 1 / 30, abs=0.02)
    assert len(attack_decoded.audio) / attack_decoded.audio_rate == pytest.approx(SECONDS, abs=0.1)


def weapon_mismatch(frame: np.ndarray, template: np.ndarray, mask: np.ndarray, at: int) -> float:
    """RMS colour error of the best placement of the pistol template near its resting place."""
    x0, y0 = at, frame.shape[0] - template.shape[0] - 24
    region = frame[y0 - 24 :, max(x0 - 24, 0) : x0 + template.shape[1] + 24]
    scores = cv2.matchTemplate(
        region.astype(np.float32), template.astype(np.float32), cv2.TM_SQDIFF, mask=mask
    )
    return float(np.sqrt(scores.min() / mask.sum()))


def test_pistol_appears_in_the_lower_centre_during_the_weapon_window(
    attack: Manifest, attack_decoded: Decoded, shared_data: Path
) -> None:
    onset, _, detail = cue(attack, "weapon")
    x0, y0, x1, y1 = detail["box"]
    width, height = detail["size"]
    assert detail["placement"] == "held"
    assert 0.35 * FAST_SIZE[0] < (x0 + x1) / 2 < 0.65 * FAST_SIZE[0]
    assert y1 == FAST_SIZE[1] and y0 > FAST_SIZE[1] / 2
    (asset,) = attack.assets["weapon"]
    rgba, _ = pistol_cutout(shared_data / asset)
    sprite = cv2.resize(rgba, (width, height), interpolation=cv2.INTER_AREA)
    # The visible top of the pistol, less a margin for its movement with the wearer's hands.
    visible = FAST_SIZE[1] - y0 - 24
    template = np.ascontiguousarray(sprite[:visible, :, :3])
    alpha = sprite[:visible, :, 3:4] > 230
    mask = np.ascontiguousarray(np.repeat(alpha, 3, axis=2).astype(np.float32))
    during = [weapon_mismatch(attack_decoded.at(onset + dt), template, mask, x0) for dt in (1, 3)]
    before = weapon_mismatch(attack_decoded.at(onset - 0.5), template, mask, x0)
    assert max(during) < 25, during
    assert before > 2 * max(during) + 10, (before, during)


def test_gunshot_energy_rises_at_the_onset(attack: Manifest, attack_decoded: Decoded) -> None:
    onset, _, _ = cue(attack, "gunshot")
    # The ambience may hold its own knocks: compare with its typical (median) 100 ms, and take
    # the loudest 100 ms of the shot's first second (a clip may open with room tone).
    before = float(
        np.median(
            [attack_decoded.rms(onset - k / 10, onset - (k - 1) / 10) for k in range(15, 1, -1)]
        )
    )
    after = max(attack_decoded.rms(onset + k / 10, onset + (k + 1) / 10) for k in range(10))
    assert after > 4 * before, (before, after)
    assert attack_decoded.rms(onset - 0.5, onset - 0.1) < 0.15


def static_pixels(frames: list[np.ndarray]) -> np.ndarray:
    """Pixels whose brightness stays put (within coding noise) across the frames. Brightness,
    because the encoder halves colour resolution and thin HUD lines bleed colour into the
    moving scene around them."""
    stack = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames])
    return np.asarray(stack.max(axis=0).astype(np.int16) - stack.min(axis=0) <= 10)


def test_game_hud_stays_put_while_the_scene_moves(game: Manifest) -> None:
    assert not game.positive and game.onset_s is None and game.category == "hard_negative"
    _, _, hud = cue(game, "hud")
    _, _, weapon = cue(game, "weapon")
    boxes: dict[str, list[int]] = hud["boxes"]
    assert set(boxes) == {"crosshair", "health", "minimap", "ammo"}
    assert hud["text"] == "AMMO 30/120"
    decoded = decode(Path(game.video))
    # Walk shots last at most 10 s: the first and last frames show different scenes.
    static = static_pixels([decoded.at(t) for t in (0.5, 3.0, SECONDS - 0.5)])
    scene = np.ones_like(static)
    for x0, y0, x1, y1 in [*boxes.values(), weapon["box"]]:
        scene[y0:y1, x0:x1] = False
    scene_static = float(static[scene].mean())
    assert scene_static < 0.15
    for name, (x0, y0, x1, y1) in boxes.items():
        fraction = float(static[y0:y1, x0:x1].mean())
        assert fraction > max(0.15, 3 * scene_static), (name, fraction, scene_static)


def test_manifests_come_back_from_the_folder(streams: Path, attack: Manifest) -> None:
    manifests = load_folder(streams)
    assert [m.scenario for m in manifests] == ["attack", "game_fps"]
    assert manifests[0] == attack
    assert Path(attack.video).is_absolute() and Path(attack.video).is_file()


def test_streams_use_only_held_out_files(attack: Manifest, game: Manifest, assets: Assets) -> None:
    roles: dict[str, tuple[tuple[Path, ...], Literal["audio", "weapon"], str]] = {
        "background": (assets.backgrounds, "weapon", "kodak24"),
        "weapon": (assets.pistols, "weapon", "pistols"),
        "gunshot": (assets.gunshots, "audio", "sesa"),
        "ambience": (assets.casual + assets.sirens, "audio", "sesa"),
    }
    for manifest in (attack, game):
        assert manifest.asset_split == assets.split
        for role, files in manifest.assets.items():
            pool, head, dataset = roles[role]
            assert set(files) <= {assets.relative(path) for path in pool}, role
            held, note = held_out_lists(head)
            if held is None:
                assert "fallback split" in note and "fallback split" in manifest.asset_split
            elif dataset in held:
                assert {Path(name).name for name in files} <= held[dataset], role


def test_published_lists_restrict_the_assets(shared_data: Path) -> None:
    # The two shapes the heads publish: the audio head a flat list, the weapon head by data set.
    sounds = ("gunshot_003.wav", "explosion_001.wav", "casual_001.wav", "siren_002.wav")
    audio = held_out_by_dataset([f"audio/sesa/{name}" for name in sounds], "sesa")
    pistols = sorted((shared_data / "weapons/pistols/images").glob("*.jpg"))[:3]
    weapon = held_out_by_dataset(
        {
            "pistols": [f"weapons/pistols/images/{path.name}" for path in pistols],
            "kodak24": ["images/kodak24/05.png", "images/kodak24/06.png"],
        },
        "pistols",
    )
    assets = assets_from_lists(shared_data, audio=audio, weapon=weapon, split="given")
    assert [path.name for path in assets.gunshots] == ["gunshot_003.wav"]
    assert [path.name for path in assets.explosions] == ["explosion_001.wav"]
    assert assets.pistols == tuple(pistols)
    assert [path.name for path in assets.backgrounds] == ["05.png", "06.png"]
    # The weapon head names no LFW files: it never saw them, so all are usable.
    assert len(assets.faces) == len(list((shared_data / "faces/lfw/images").glob("*/*.jpg")))
    with pytest.raises(
        ValueError, match="no usable held-out files for: explosions, casual, sirens"
    ):
        assets_from_lists(
            shared_data,
            audio=held_out_by_dataset(["audio/sesa/gunshot_003.wav"], "sesa"),
            weapon=weapon,
            split="given",
        )
    with pytest.raises(ValueError, match="name no pistols files"):
        assets_from_lists(shared_data, audio=audio, weapon={"lfw": frozenset()}, split="given")


def test_catalogue_is_deterministic_and_labelled() -> None:
    for name, entry in SCENARIOS.items():
        for seed in (0, 1, 2):
            spec = scenario(name, seed=seed, duration_s=60)
            assert spec == scenario(name, seed=seed, duration_s=60)
            assert spec.category == entry.category
            if spec.positive:
                assert spec.onset_s is not None and 0 < spec.onset_s < 60
            else:
                assert spec.onset_s is None
    assert scenario("attack", seed=0) != scenario("attack", seed=1)
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario("nope")


def test_every_scenario_builds_with_its_cues(tmp_path: Path, assets: Assets) -> None:
    built = build_catalogue(tmp_path, assets, duration_s=5.0, size=(256, 144))
    assert [m.scenario for m in built] == list(SCENARIOS)
    assert load_folder(tmp_path) == sorted(built, key=lambda m: m.video)
    for manifest in built:
        spec = scenario(manifest.scenario, duration_s=5.0, size=(256, 144))
        assert [c.kind for c in manifest.cues] == [c.kind for c in spec.cues]
        assert manifest.onset_s == spec.onset_s
        assert probe_duration(Path(manifest.video)) == pytest.approx(5.0, abs=0.15)
        for placed in manifest.cues:
            if placed.kind in ("gunshot", "explosion"):
                assert placed.marks_s[0] == placed.onset_s and placed.offset_s > placed.onset_s
                assert manifest.assets[placed.kind]


def test_build_refuses_an_unknown_container(tmp_path: Path, assets: Assets) -> None:
    spec = scenario("benign_tripod", duration_s=5, size=FAST_SIZE)
    with pytest.raises(ValueError, match="suffix"):
        build_stream(spec, tmp_path / "out.avi", assets)
    assert list(tmp_path.iterdir()) == []


def receive(
    url: str, into: list[tuple[float, float]], timeout: float | None = None
) -> threading.Thread:
    """Decode a live URL in a thread, recording (frame time, arrival) for each video frame."""

    def run() -> None:
        try:
            with av.open(url, timeout=timeout) as container:
                for frame in container.decode(video=0):
                    into.append((float(frame.time or 0.0), time.monotonic()))
        except (OSError, av.FFmpegError):
            pass  # a UDP stream has no end: the receiver stops at its read timeout

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_real_time(frames: list[tuple[float, float]], start: float) -> None:
    """Frames arrive as the stream clock advances: not ahead of it, not falling behind."""
    times = np.array([t for t, _ in frames]) - frames[0][0]
    arrivals = np.array([arrival for _, arrival in frames]) - start
    steady = times < times[-1] - 1.0  # the last frames wait for the end of the stream
    lag = arrivals[steady] - times[steady]
    assert lag.min() > -0.2, lag.min()
    assert np.ptp(lag) < 1.0, np.ptp(lag)
    assert times[-1] > SECONDS - 1.0


def test_play_over_udp_arrives_at_real_time(attack: Manifest) -> None:
    url = f"udp://127.0.0.1:{free_local_port(socket.SOCK_DGRAM)}"
    frames: list[tuple[float, float]] = []
    with play(Path(attack.video), url, delay_s=1.0) as player:
        thread = receive(f"{url}?timeout=2000000", frames)
        start = player.wait_started(timeout=20)
        assert start is not None
        assert player.wait(timeout=SECONDS + 20)
        thread.join(timeout=10)
    assert player.returncode == 0, player.error
    assert player.sent_s == pytest.approx(SECONDS, abs=0.1)
    assert time.monotonic() - start >= SECONDS
    assert len(frames) >= 0.9 * SECONDS * 30
    assert_real_time(frames, start)


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory, assets: Assets) -> Path:
    spec = scenario("benign_walk", seed=1, duration_s=6, size=FAST_SIZE)
    return Path(build_stream(spec, tmp_path_factory.mktemp("short") / "walk.ts", assets).video)


def test_play_as_hls_over_http_ends_with_the_playlist(short: Path) -> None:
    url = f"http://127.0.0.1:{free_local_port(socket.SOCK_STREAM)}/live/walk.m3u8"
    frames: list[tuple[float, float]] = []
    with play(short, url) as player:
        assert player.wait_ready(timeout=20)
        receive(url, frames, timeout=10).join(timeout=30)
    assert 0.9 * 6 * 30 <= len(frames) <= 6 * 30
    assert frames[-1][0] - frames[0][0] == pytest.approx(6 - 1 / 30, abs=0.05)


def test_play_over_tcp_serves_one_client_to_the_end(short: Path) -> None:
    url = f"tcp://127.0.0.1:{free_local_port(socket.SOCK_STREAM)}"
    frames: list[tuple[float, float]] = []
    with play(short, url) as player:
        assert player.wait_ready(timeout=20)
        for _ in range(50):  # the player listens a moment after it says so
            receive(url, frames, timeout=5).join(timeout=30)
            if frames:
                break
            time.sleep(0.1)
        assert player.wait(timeout=10)
    assert player.returncode == 0, player.error
    assert len(frames) == 6 * 30


def test_stop_ends_the_player_and_leaves_no_process(short: Path) -> None:
    player = play(short, f"udp://127.0.0.1:{free_local_port(socket.SOCK_DGRAM)}")
    assert player.wait_started(timeout=20) is not None
    time.sleep(1.0)
    began = time.monotonic()
    player.stop()
    assert time.monotonic() - began < 2.0
    assert player.finished and player.returncode == 0
    assert player.sent_s < 3.0


def running(pid: int) -> bool:
    """The process exists and has not exited (an exited orphan may linger as a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_player_dies_with_its_caller(short: Path) -> None:
    caller_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from vigil.live.playout import play\n"
        f"player = play(Path({str(short)!r}), 'udp://127.0.0.1:{free_local_port(socket.SOCK_DGRAM)}')\n"
        "player.wait_started(timeout=20)\n"
        "print(player.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    caller = subprocess.Popen([sys.executable, "-c", caller_code], stdout=subprocess.PIPE)
    assert caller.stdout is not None
    pid = int(caller.stdout.readline())
    assert running(pid)
    caller.kill()  # no clean-up code runs: the player must notice by itself
    caller.wait()
    deadline = time.monotonic() + 3  # well before the 6 s stream would end by itself
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)


def test_player_refuses_bad_targets(short: Path, tmp_path: Path) -> None:
    for url in ("rtsp://127.0.0.1:8554/x", "udp://127.0.0.1", "http://127.0.0.1:80/x.mp4"):
        with pytest.raises(ValueError, match="udp://HOST:PORT"):
            parse_target(url)
    with pytest.raises(FileNotFoundError):
        play(tmp_path / "missing.ts", "udp://127.0.0.1:9")


def test_player_reports_an_unreadable_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ts"
    broken.write_bytes(b"not a video at all" * 100)
    with play(broken, f"udp://127.0.0.1:{free_local_port(socket.SOCK_DGRAM)}") as player:
        assert player.wait(timeout=20)
    assert player.returncode == 1
    assert "playout failed" in player.error


@pytest.fixture
def clips(tmp_path: Path, short: Path) -> Iterator[Path]:
    (tmp_path / "clips").mkdir()
    shutil.copy(short, tmp_path / "clips" / "walk.ts")
    shutil.copy(short, tmp_path / "clips" / "other.ts")
    yield tmp_path


def test_real_clip_labels_load(clips: Path) -> None:
    (clips / "labels.csv").write_text(
        "clip,positive,onset_s,category,scenario\n"
        "clips/walk.ts,1,2.5,,\n"
        "clips/other.ts,no,,hard_negative,airsoft\n",
        encoding="utf-8",
    )
    walk, other = load_folder(clips)[::-1]
    assert (walk.positive, walk.onset_s, walk.category, walk.synthetic) == (
        True,
        2.5,
        "attack",
        False,
    )
    assert walk.duration_s == pytest.approx(6.0, abs=0.1)
    assert (other.positive, other.onset_s, other.category, other.scenario) == (
        False,
        None,
        "hard_negative",
        "airsoft",
    )


def test_malformed_labels_are_rejected_with_every_problem(clips: Path) -> None:
    (clips / "labels.csv").write_text(
        "clip,positive,onset_s\n"
        "clips/walk.ts,1,soon\n"
        "clips/missing.ts,1,3\n"
        "clips/other.ts,0,4\n"
        "clips/walk.ts,maybe,\n"
        "../outside.ts,1,1\n",
        encoding="utf-8",
    )
    with pytest.raises(GroundTruthError) as caught:
        load_labels(clips)
    message = str(caught.value)
    assert "5 problem(s)" in message
    assert "line 2: onset_s 'soon' is not a number" in message
    assert "line 3: clip 'clips/missing.ts' does not exist" in message
    assert "line 4: a negative clip has no onset_s" in message
    assert "line 5: positive 'maybe' is not 1/0" in message
    assert "line 6: clip '../outside.ts' lies outside" in message


def test_labels_with_a_wrong_header_are_rejected(clips: Path) -> None:
    (clips / "labels.csv").write_text("file,positive,start\nclips/walk.ts,1,2\n", encoding="utf-8")
    with pytest.raises(GroundTruthError, match=r"missing column\(s\) clip, onset_s"):
        load_labels(clips)


def test_a_clip_that_is_not_a_video_is_rejected(clips: Path) -> None:
    (clips / "clips" / "notes.ts").write_text("just text", encoding="utf-8")
    (clips / "labels.csv").write_text("clip,positive,onset_s\nclips/notes.ts,0,\n")
    with pytest.raises(GroundTruthError, match=r"line 2: notes\.ts is not a readable video"):
        load_labels(clips)


def test_a_manifest_contradicting_itself_is_rejected(tmp_path: Path, short: Path) -> None:
    shutil.copy(short, tmp_path / "walk.ts")
    (tmp_path / "walk.json").write_text(
        '{"video": "walk.ts", "synthetic": false, "scenario": "x", "category": "benign",'
        ' "positive": true, "onset_s": 1.0}',
        encoding="utf-8",
    )
    with pytest.raises(GroundTruthError, match="contradicts category 'benign'"):
        load_folder(tmp_path)
