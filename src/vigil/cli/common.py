"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.config import get_settings
from vigil.hashing import BankError, KnownContent

# soft_wrap: a path in an error message must stay whole, whatever the terminal width.
stderr = Console(stderr=True, soft_wrap=True)
stdout = Console()
T = TypeVar("T")


@contextmanager
def known_content() -> Iterator[KnownContent]:
    known = KnownContent(get_settings())
    try:
        yield known
    except BankError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        known.close()


def emit_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def with_progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
