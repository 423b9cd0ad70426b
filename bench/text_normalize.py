"""Speed of ``vigil.text.normalize`` on real posts, and of what reads its output first: the
lexicon match and language identification.

Posts are the rows of ``../shared/data/text`` between 150 and 250 characters (a typical post),
a fixed sample across the datasets and languages. Reported: microseconds per post (best of
``--repeats`` passes, so that other processes on a shared machine disturb it least), for
``normalize`` alone, per step of its pipeline, ``Lexicon.default().match`` and
``detect_language`` on the normalized text; and the time for hostile input (50k characters of
combining marks, bidi overrides, spaced letters).

Reproduce::

    .venv/bin/python bench/text_normalize.py     # writes bench/results/text_normalize.md
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vigil.text import normalize as normalize_module
from vigil.text.language import detect_language
from vigil.text.lexicon import Lexicon
from vigil.text.normalize import normalize

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
RESULTS = Path(__file__).resolve().parent / "results" / "text_normalize.md"
HOSTILE = {
    "50k mixed combining marks": "a" + "\u0301\u0316" * 25_000,
    "50k bidi overrides": "\u202e" * 50_000,
    "25k spaced letters": "k " * 25_000,
    "25k leet words": "k1ll " * 10_000,
    "50k zero-width joins": "k\u200b" * 25_000,
}


def typical_posts(limit: int) -> list[str]:
    """Every dataset's 150-250 character rows, interleaved, up to ``limit``."""
    per_file: list[list[str]] = []
    for path in sorted(DATA.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            texts = (json.loads(line)["text"] for line in lines)
            per_file.append([text for text in texts if 150 <= len(text) <= 250])
    posts = [post for group in zip(*per_file, strict=False) for post in group]
    leftovers = [post for group in per_file for post in group[len(posts) // len(per_file) :]]
    return (posts + leftovers)[:limit]


def best_microseconds(work: Callable[[str], object], posts: Sequence[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for post in posts:
            work(post)
        best = min(best, time.perf_counter() - start)
    return best / len(posts) * 1e6


def step_timings(posts: Sequence[str], repeats: int) -> list[tuple[str, float]]:
    """Each step on the input it sees inside ``normalize`` (the previous steps' output)."""
    inputs = [normalize_module._unescape_html(post) for post in posts]
    rows = []
    for step in normalize_module._STEPS:
        rows.append((step.__name__, best_microseconds(_alone(step), inputs, repeats)))
        inputs = [step(text, set()) for text in inputs]
    return rows


def _alone(step: normalize_module.Step) -> Callable[[str], str]:
    return lambda text: step(text, set())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    posts = typical_posts(args.posts)
    ascii_share = sum(post.isascii() for post in posts) / len(posts)
    lines = [
        "# normalize speed",
        "",
        f"{len(posts)} real posts of 150-250 characters from ../shared/data/text "
        f"({ascii_share:.0%} pure ASCII); best of {args.repeats} passes.",
        "",
        "| what | µs per post |",
        "|---|---|",
        f"| normalize | {best_microseconds(normalize, posts, args.repeats):.1f} |",
    ]
    lines += [f"| step {name} | {micros:.1f} |" for name, micros in step_timings(posts, 3)]
    normalized = [normalize(post).text for post in posts]
    lexicon = Lexicon.default()
    lines += [
        f"| lexicon match ({len(lexicon.entries)} entries) | "
        f"{best_microseconds(lexicon.match, normalized, args.repeats):.1f} |",
        f"| detect_language | {best_microseconds(detect_language, normalized, args.repeats):.1f} |",
    ]
    lines += ["", "| hostile input | seconds |", "|---|---|"]
    for name, text in HOSTILE.items():
        start = time.perf_counter()
        normalize(text)
        lines.append(f"| {name} | {time.perf_counter() - start:.3f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
