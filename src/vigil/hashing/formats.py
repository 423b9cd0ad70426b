"""Hash-list files: CSV/TSV (``signal_type,signal,labels...``), JSONL, and python-threatexchange's
plain signal files (``signal_type signal`` per line).

Reading is tolerant: a bad row is reported with its line number and skipped; every good row is kept.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO

from vigil.hashing.banks import BankedSignal, NewEntry
from vigil.hashing.signals import Signal, get_signal_type

HashListFormat = Literal["csv", "tsv", "jsonl", "pytx"]
FORMATS: tuple[HashListFormat, ...] = ("csv", "tsv", "jsonl", "pytx")
_MAX_FIELD = 1 << 20  # a vPDQ of a long video is big; anything larger is hostile


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ParseReport:
    entries: list[NewEntry] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def format_for_path(path: Path) -> HashListFormat:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if suffix in ("tsv", "tab"):
        return "tsv"
    if suffix == "txt":
        return "pytx"
    return "csv"


def _entry(signal_type: str, value: str, labels: Iterable[str], **extra: object) -> NewEntry:
    """Validate one row; raise ValueError with a message fit for the user."""
    kind = get_signal_type(signal_type)
    quality = extra.get("quality")
    seen_at = extra.get("seen_at")
    return NewEntry(
        signals=[
            Signal(
                kind.name,
                kind.validate(value),
                int(quality) if isinstance(quality, int | float | str) and quality != "" else None,
                str(extra["variant"]) if extra.get("variant") else None,
            )
        ],
        labels=[label.strip() for label in labels if label and label.strip()],
        source=str(extra.get("source") or ""),
        content_ref=str(extra.get("content_ref") or ""),
        seen_at=datetime.fromisoformat(seen_at) if isinstance(seen_at, str) and seen_at else None,
    )


def _parse_delimited(stream: TextIO, delimiter: str, report: ParseReport) -> None:
    # Line by line, so that one hostile row (a NUL byte, a stray quote) costs that row only.
    for line_no, line in enumerate(stream, start=1):
        try:
            row = next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error as exc:
            report.errors.append(RowError(line_no, f"unreadable row: {exc}"))
            continue
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if line_no == 1 and row[0].strip().lower() == "signal_type":
            continue  # header
        if len(row) < 2:
            report.errors.append(RowError(line_no, "expected signal_type, signal[, labels...]"))
            continue
        try:
            report.entries.append(_entry(row[0], row[1], row[2:]))
        except ValueError as exc:
            report.errors.append(RowError(line_no, str(exc)))


def _labels_of(obj: dict[str, object]) -> list[str]:
    labels = obj.get("labels", obj.get("tags", []))
    if isinstance(labels, str):
        return [labels]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("labels must be a list of strings")
    return labels


def _parse_jsonl(stream: TextIO, report: ParseReport) -> None:
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("each line must be a JSON object")
            signal_type = obj.get("signal_type")
            value = obj.get("signal", obj.get("signal_str"))
            if not isinstance(signal_type, str) or not isinstance(value, str):
                raise ValueError("signal_type and signal must be strings")
            extra = {
                k: obj.get(k) for k in ("source", "content_ref", "quality", "variant", "seen_at")
            }
            report.entries.append(_entry(signal_type, value, _labels_of(obj), **extra))
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            report.errors.append(RowError(line_no, str(exc)))


def _parse_pytx(stream: TextIO, default_type: str | None, report: ParseReport) -> None:
    for line_no, line in enumerate(stream, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        signal_type, _, value = text.partition(" ")
        if not value:
            signal_type, value = default_type or "", text
        try:
            report.entries.append(_entry(signal_type, value.strip(), []))
        except ValueError as exc:
            report.errors.append(RowError(line_no, str(exc)))


def parse_hash_list(
    stream: TextIO, fmt: HashListFormat, *, default_signal_type: str | None = None
) -> ParseReport:
    csv.field_size_limit(_MAX_FIELD)
    report = ParseReport()
    if fmt == "jsonl":
        _parse_jsonl(stream, report)
    elif fmt == "pytx":
        _parse_pytx(stream, default_signal_type, report)
    else:
        _parse_delimited(stream, "\t" if fmt == "tsv" else ",", report)
    return report


def read_hash_list(
    path: Path, fmt: HashListFormat | None = None, *, default_signal_type: str | None = None
) -> ParseReport:
    # errors="replace": a stray byte spoils one row (reported by validation), not the whole file.
    with open(path, encoding="utf-8", errors="replace", newline="") as stream:
        return parse_hash_list(
            stream, fmt or format_for_path(path), default_signal_type=default_signal_type
        )


def write_hash_list(rows: Iterable[BankedSignal], stream: TextIO, fmt: HashListFormat) -> int:
    count = 0
    if fmt == "jsonl":
        for row in rows:
            stream.write(json.dumps(_row_json(row), ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "pytx":
        for row in rows:
            stream.write(f"{row.signal_type} {row.value}\n")
            count += 1
    else:
        writer = csv.writer(stream, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
        for row in rows:
            writer.writerow([row.signal_type, row.value, *row.labels])
            count += 1
    return count


def _row_json(row: BankedSignal) -> dict[str, object]:
    return {
        "signal_type": row.signal_type,
        "signal": row.value,
        "labels": row.labels,
        "entry_id": row.entry_id,
        "source": row.source,
        "content_ref": row.content_ref,
        "quality": row.quality,
        "variant": row.variant,
    }
