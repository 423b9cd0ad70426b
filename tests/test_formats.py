from __future__ import annotations

import io
import json

import pytest

from vigil.hashing.banks import BankedSignal
from vigil.hashing.formats import parse_hash_list, write_hash_list

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def test_csv_with_header_labels_and_bad_rows() -> None:
    text = (
        "signal_type,signal,labels\n"
        f"pdq,{PDQ},terrorism,christchurch\n"
        "pdq,not-a-hash\n"
        f"video_md5,{MD5.upper()}\n"
        "nosuchtype,abc\n"
        "onlyonecolumn\n"
        f"pdq,{PDQ[:-1]}\x00,x\n"
        "\n"
        f"sha256,{'a' * 64},‮evil‬\n"
    )
    report = parse_hash_list(io.StringIO(text), "csv")
    assert [(e.signals[0].signal_type, e.labels) for e in report.entries] == [
        ("pdq", ["terrorism", "christchurch"]),
        ("md5", []),
        ("sha256", ["‮evil‬"]),
    ]
    assert report.entries[1].signals[0].value == MD5  # canonical lower case
    assert [e.line for e in report.errors] == [3, 5, 6, 7]


def test_jsonl_accepts_pytx_keys_and_reports_malformed_lines() -> None:
    lines = [
        json.dumps({"signal_type": "pdq", "signal": PDQ, "labels": ["a"], "quality": 90}),
        json.dumps({"signal_type": "pdq", "signal_str": PDQ, "tags": ["b"]}),
        '{"signal_type": "pdq", "signal": ',
        json.dumps(["not", "an", "object"]),
        json.dumps({"signal_type": "pdq", "signal": PDQ, "labels": [1, 2]}),
    ]
    report = parse_hash_list(io.StringIO("\n".join(lines)), "jsonl")
    assert [e.labels for e in report.entries] == [["a"], ["b"]]
    assert report.entries[0].signals[0].quality == 90
    assert [e.line for e in report.errors] == [3, 4, 5]


def test_pytx_plain_file_with_default_type() -> None:
    report = parse_hash_list(io.StringIO(f"pdq {PDQ}\n{MD5}\n"), "pytx", default_signal_type="md5")
    assert [e.signals[0].signal_type for e in report.entries] == ["pdq", "md5"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "pytx"])
def test_export_then_import_round_trips(fmt: str) -> None:
    rows = [
        BankedSignal("pdq", PDQ, ["terror", "has,comma"], 1, "gifct", "a.jpg", 100, None),
        BankedSignal("md5", MD5, [], 2, "", "", None, None),
    ]
    out = io.StringIO()
    assert write_hash_list(rows, out, fmt) == 2  # type: ignore[arg-type]
    report = parse_hash_list(io.StringIO(out.getvalue()), fmt)  # type: ignore[arg-type]
    assert report.errors == []
    assert [(e.signals[0].signal_type, e.signals[0].value) for e in report.entries] == [
        ("pdq", PDQ),
        ("md5", MD5),
    ]
    if fmt != "pytx":  # the pytx plain format carries no labels
        assert report.entries[0].labels == ["terror", "has,comma"]
