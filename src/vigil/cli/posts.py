"""``vigil posts``: scan posts from files, stdin or a broker subject; publish them to the bus
for workers; show a stored post; look at the lexicon."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from vigil.config import get_settings
from vigil.text.posts import BadLine
from vigil.text.settings import TextSettings

posts_app = typer.Typer(help="Post monitoring: scan posts for threats, terrorist support, hate.")
stdout = Console()
stderr = Console(stderr=True)

FORMATS = ("auto", "vigil", "x", "telegram")


def _settings() -> TextSettings:
    return TextSettings.of(get_settings())


def _service(settings: TextSettings, export_dir: Path | None = None) -> Any:
    from vigil.hashing import KnownContent
    from vigil.networks import AccountLedger
    from vigil.text.service import PostService

    known = KnownContent(settings)
    hooks = [AccountLedger.of(settings)]
    return PostService(known.db, settings, known, export_dir=export_dir, hooks=hooks)


def _check_format(fmt: str) -> Any:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    return fmt


class _Tally:
    """Running totals printed as batches commit; bad lines go to stderr with their place."""

    def __init__(self) -> None:
        self.scanned = self.alerts = self.campaigns = self.duplicates = self.bad = 0

    def __call__(self, result: Any, bad: list[BadLine]) -> None:
        self.scanned += result.scanned
        self.alerts += result.alerts
        self.campaigns += result.campaign_alerts
        self.duplicates += result.duplicates
        self.bad += len(bad)
        for line in bad:
            stderr.print(f"[yellow]skipped[/yellow] line {line.line}: {line.reason}", markup=True)
        stderr.print(
            f"scanned {self.scanned}  alerts {self.alerts}  campaigns {self.campaigns}  "
            f"already seen {self.duplicates}  bad {self.bad}",
            highlight=False,
        )

    def summary(self) -> dict[str, int]:
        return {
            "scanned": self.scanned,
            "alerts": self.alerts,
            "campaign_alerts": self.campaigns,
            "duplicates": self.duplicates,
            "bad_lines": self.bad,
        }


@posts_app.command("scan")
def scan(
    path: str = typer.Argument(
        ..., help="A JSONL/NDJSON file, an X API v2 dump, a Telegram result.json, or - for stdin."
    ),
    fmt: str = typer.Option("auto", "--format", help="auto, vigil, x or telegram."),
    platform: str | None = typer.Option(None, help="Platform name where the format has none."),
    resume: bool = typer.Option(True, help="Start where the last scan of this file stopped."),
    follow: bool = typer.Option(False, help="Keep reading what is appended (Ctrl-C stops)."),
    poll: float = typer.Option(1.0, help="Seconds between looks at a followed file."),
) -> None:
    """Scan posts; flagged ones go to the review queue. Prints a JSON summary."""
    from vigil.text.sources import scan_file, scan_stream

    format_ = _check_format(fmt)
    settings = _settings()
    # An export's attachments (Telegram's photos/...) are files beside it, and only there.
    service = _service(settings, None if path == "-" else Path(path).resolve().parent)
    tally = _Tally()
    try:
        scanner = service.scanner()
        if path == "-":
            scan_stream(scanner, sys.stdin.buffer, format_, platform=platform, progress=tally)
        else:
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            scan_file(
                scanner,
                Path(path),
                format_,
                platform=platform,
                resume=resume,
                follow=follow,
                poll_seconds=poll,
                stop=stop,
                progress=tally,
            )
    except (OSError, ValueError) as error:
        stderr.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        service.known.close()
    typer.echo(json.dumps(tally.summary()))


@posts_app.command("monitor")
def monitor(
    servers: str = typer.Option("nats://127.0.0.1:4222", help="NATS server URL(s)."),
    subject: str = typer.Option("vigil.posts", help="The subject posts are published on."),
    stream: str = typer.Option("VIGIL_POSTS", help="The JetStream stream (made if missing)."),
    durable: str = typer.Option("vigil-posts", help="The durable consumer's name."),
    fmt: str = typer.Option("vigil", "--format", help="vigil, x or telegram (one record each)."),
    platform: str | None = typer.Option(None, help="Platform name where the format has none."),
) -> None:
    """Follow a NATS JetStream subject until interrupted: one JSON record per message,
    acknowledged once its batch is stored."""
    from vigil.text.sources import scan_subject

    format_ = _check_format(fmt)
    settings = _settings()
    service = _service(settings)
    tally = _Tally()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await scan_subject(
            service.scanner(),
            servers,
            subject,
            stream=stream,
            durable=durable,
            fmt=format_,
            platform=platform,
            stop=stop,
            progress=tally,
        )

    try:
        asyncio.run(run())
    finally:
        service.known.close()
    typer.echo(json.dumps(tally.summary()))


@posts_app.command("kafka")
def kafka(
    bootstrap: str = typer.Argument(..., help="Kafka bootstrap servers, host:port[,host:port]."),
    topic: str = typer.Argument(..., help="The topic posts are produced to."),
    group: str = typer.Option("vigil-posts", help="The consumer group (offsets are its)."),
    fmt: str = typer.Option("vigil", "--format", help="vigil, x or telegram (one record each)."),
    platform: str | None = typer.Option(None, help="Platform name where the format has none."),
) -> None:
    """Follow a Kafka topic until interrupted, for platforms that already run Kafka: one JSON
    record per message, offsets committed once their batch is stored."""
    from vigil.text.sources import scan_kafka

    format_ = _check_format(fmt)
    settings = _settings()
    service = _service(settings)
    tally = _Tally()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        scan_kafka(
            service.scanner(),
            bootstrap,
            topic,
            group=group,
            fmt=format_,
            platform=platform,
            stop=stop,
            progress=tally,
        )
    finally:
        service.known.close()
    typer.echo(json.dumps(tally.summary()))


@posts_app.command("publish")
def publish(
    source: Path = typer.Argument(..., help="A JSONL/NDJSON file of records, or - for stdin."),
) -> None:
    """Put each line of SOURCE on the bus's posts queue (VIGIL_BUS_URL) for `vigil worker
    --role posts`. A line published twice within the bus's duplicate window is stored once."""
    from vigil.bus import BusSettings, open_shared_bus
    from vigil.text.service import QUEUE

    settings = BusSettings.of(get_settings())
    try:
        bus = open_shared_bus(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="VIGIL_BUS_URL") from exc
    published = 0
    try:
        with sys.stdin.buffer if str(source) == "-" else source.open("rb") as lines:
            for line in lines:
                record = line.strip()
                if record:
                    bus.publish(QUEUE, record, msg_id=hashlib.sha256(record).hexdigest())
                    published += 1
    finally:
        bus.close()
    typer.echo(json.dumps({"published": published}))


@posts_app.command("show")
def show(key: str = typer.Argument(..., help="platform:id")) -> None:
    """A stored post with its scores, flags, lexicon hits and campaign, as JSON."""
    settings = _settings()
    service = _service(settings)
    try:
        record = service.get(key)
    finally:
        service.known.close()
    if record is None:
        stderr.print(f"[red]error:[/red] no post {key}")
        raise typer.Exit(1)
    columns = record.__table__.columns
    body = {column.name: getattr(record, column.name) for column in columns}
    body.pop("signature", None)
    typer.echo(json.dumps(body, default=str, ensure_ascii=False, indent=2))


@posts_app.command("lexicon")
def lexicon(
    check: str | None = typer.Option(None, help="Show which entries this text hits."),
) -> None:
    """The lexicon in use (shipped entries plus VIGIL_TEXT_LEXICON), or the hits in a text."""
    from vigil.text.lexicon import Lexicon
    from vigil.text.normalize import normalize

    settings = _settings()
    words = Lexicon.default()
    if settings.text_lexicon is not None:
        words = words.merged(Lexicon.load(settings.text_lexicon))
    if check is None:
        for entry in words.entries:
            stdout.print(f"{entry.id}\t{entry.label}\t{entry.category}\t{entry.name}", markup=False)
        return
    for hit in words.match(normalize(check).text):
        stdout.print(hit.explanation, markup=False, highlight=False)
