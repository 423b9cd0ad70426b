"""End-to-end post-monitoring throughput: a JSONL file of posts → ``vigil posts scan``'s loop
(normalize, language, lexicon, two-stage classifier, campaigns, triage, store, alerts).

The stream is built from real rows of ``../shared/data/text`` at a chosen prevalence of harmful
posts (default 5 %: a busy monitoring stream around a tense event, still mostly ordinary talk),
spread over ~5 % as many accounts as posts, with a share of near-duplicate campaign copies. It is
written to a file first, so decoding JSON is part of the measurement, as it is in production.

    .venv/bin/python bench/posts_throughput.py --posts 20000 --out bench/results/posts_throughput.md
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vigil.store import Database
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings
from vigil.text.sources import scan_file

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"


def harmful(row: dict[str, Any]) -> bool | None:
    """True/False where the dataset says so clearly; None for rows this stream leaves out."""
    labels, source = row["labels"], row["source"]
    verdicts = {
        "davidson": lambda: labels.get("class") != "neither",
        "hatexplain": lambda: {"normal": False, "undecided": None}.get(labels.get("label"), True),
        "olid": lambda: labels.get("a") == "OFF",
        "stormfront": lambda: bool(labels.get("hate")),
        "isis_fifthtribe": lambda: True,
        "germeval2026": lambda: (
            labels.get("vio") not in (None, "nothing") or bool(labels.get("c2a"))
        ),
        "mlma": lambda: labels.get("sentiment") != ["normal"],
    }
    verdict = verdicts.get(source)
    return verdict() if verdict else None


def rows() -> tuple[list[str], list[str]]:
    benign, bad = [], []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            verdict = harmful(row)
            if verdict is not None:
                (bad if verdict else benign).append(row["text"])
    return benign, bad


def stream(n: int, prevalence: float, campaign_share: float, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    benign, bad = rows()
    accounts = max(1, n // 20)
    start = datetime(2026, 11, 20, tzinfo=UTC)
    seeds = rng.sample(bad, 20)
    for i in range(n):
        roll = rng.random()
        if roll < campaign_share:
            text = rng.choice(seeds) + rng.choice(["", " #now", " !!", " RT", " 🔥"])
        elif roll < campaign_share + prevalence:
            text = rng.choice(bad)
        else:
            text = rng.choice(benign)
        yield {
            "id": str(i),
            "platform": "bench",
            "author_ref": f"acct{rng.randrange(accounts)}",
            "text": text,
            "created_at": (start + timedelta(seconds=i)).isoformat(),
            "reach": {"followers": rng.randrange(10, 100_000)},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--prevalence", type=float, default=0.05)
    parser.add_argument("--campaigns", type=float, default=0.01, help="share of campaign copies")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "posts.jsonl"
        with feed.open("w", encoding="utf-8") as out:
            for post in stream(args.posts, args.prevalence, args.campaigns, args.seed):
                out.write(json.dumps(post, ensure_ascii=False) + "\n")
        settings = TextSettings(home=Path(tmp) / "home", database_url=args.database_url)
        db = Database(settings.resolved_database_url)
        loaded = time.perf_counter()
        scanner = PostScanner(db, settings)
        scanner.classifier.predict(["warm-up"])
        ready = time.perf_counter()
        result = scan_file(scanner, feed)
        done = time.perf_counter()
        db.dispose()
    seconds = done - ready
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "# Post monitoring throughput (end to end)",
        "",
        f"`.venv/bin/python bench/posts_throughput.py --posts {args.posts} "
        f"--prevalence {args.prevalence} --campaigns {args.campaigns}"
        + (" --database-url …" if args.database_url else "")
        + (f" --out {args.out}`" if args.out else "`"),
        "",
        f"- store: {'PostgreSQL' if args.database_url else 'SQLite'}; one process, one scanner; "
        f"batches of {settings.text_batch_size}",
        f"- posts: {result.scanned:,} ({args.prevalence:.0%} harmful rows, "
        f"{args.campaigns:.0%} campaign copies) in {seconds:.1f} s: "
        f"**{result.scanned / seconds:,.0f} posts/s** (target ≥ 1,000)",
        f"- full multilingual model ran on {result.full_model:,} posts "
        f"({result.full_model / max(result.scanned, 1):.1%}); the rest stopped at the first stage",
        f"- flagged: {dict(result.flagged)}; alerts {result.alerts}, campaign queue items "
        f"{result.campaign_alerts}",
        f"- model load {ready - loaded:.1f} s; peak RSS {peak_mb:,.0f} MB",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
