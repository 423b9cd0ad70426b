"""``vigil faces``, run as officers would, each command in its own process with their token in
``VIGIL_TOKEN``: keygen, a watchlist made, filled and approved, enrollment with a rejected
photo, a search of a folder, the two-person review, export and purge.

The threshold is set as in test_api_faces (0.92, between dlib's same-person and
different-person similarities for these photos).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from vigil.accounts import Accounts, AccountSettings, TokenUse
from vigil.config import Settings
from vigil.review import create_case
from vigil.store import Database

VIGIL = [sys.executable, "-m", "vigil", "faces"]
PURPOSE = "Find the suspects of the 12 May bombing in recorded footage"
LEGAL_BASIS = "Police and Criminal Evidence Act 1984, s.64A and the force's FR policy"
JUSTIFICATION = "CCTV of the attack shows faces; identifying the suspects is necessary"
NOTE = "Same ear shape, hairline and nose bridge"


class Officers:
    """Runs ``vigil faces`` as one of the accounts made here (or as no one)."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.env = {
            **os.environ,
            "VIGIL_HOME": str(settings.home),
            "VIGIL_DATABASE_URL": settings.resolved_database_url,
            "VIGIL_FACES_KEY": key,
            "VIGIL_FACES_THRESHOLD": "0.92",
            "COLUMNS": "200",  # rich's tables: one row a line
        }
        self.env.pop("VIGIL_TOKEN", None)
        self.tokens: dict[str, str] = {}

    def add(self, db: Database, settings: Settings, username: str, role: str) -> None:
        accounts = Accounts(db, AccountSettings.of(settings))
        accounts.create_user("test:setup", username, [role])
        self.tokens[username] = accounts.create_token("test:setup", username, username)[1]

    def run(self, who: str | None, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "VIGIL_TOKEN": self.tokens[who]} if who else self.env
        done = subprocess.run([*VIGIL, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == code, (
            f"vigil faces {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        )
        return done


def lfw(shared_data: Path, name: str, number: int) -> Path:
    return shared_data / "faces" / "lfw" / "images" / name / f"{name}_{number:04d}.jpg"


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_faces_cli_from_watchlist_to_export(
    settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    key = subprocess.run(
        [*VIGIL, "keygen"], capture_output=True, text=True, timeout=120, check=True
    ).stdout.strip()
    officers = Officers(settings, key)
    no_one = officers.run(None, "watchlist", "list", code=2)
    assert "VIGIL_TOKEN" in no_one.stderr

    db = Database(settings.resolved_database_url)
    try:
        for username, role in (("ivy", "investigator"), ("sam", "supervisor"), ("rob", "reviewer")):
            officers.add(db, settings, username, role)
        case_id = _open_case(db, settings, officers.tokens["ivy"])
    finally:
        db.dispose()

    dates = ("--review-at", "2999-01-01", "--expires-at", "2999-06-01")
    create = ("watchlist", "create", "bridge", "--purpose", PURPOSE, "--legal-basis", LEGAL_BASIS)
    officers.run("ivy", *create, *dates)
    officers.run("ivy", "watchlist", "add-person", "bridge", "P-1", "Donald Rumsfeld")
    blurred = tmp_path / "blurred.jpg"
    with Image.open(lfw(shared_data, "Donald_Rumsfeld", 3)) as photo:
        sharp = np.asarray(photo.convert("RGB"))
    Image.fromarray(cv2.GaussianBlur(sharp, (0, 0), 4)).save(blurred)
    photos = [str(lfw(shared_data, "Donald_Rumsfeld", n)) for n in (1, 2)]
    enroll = ("enroll", "bridge", "P-1", *photos, str(blurred), "--source", "custody 17/3")
    enrolled = json_lines(officers.run("ivy", *enroll, "--strict", "--json", code=1).stdout)
    assert [r["enrolled"] for r in enrolled] == [True, True, False]
    assert enrolled[2]["reason"] == "too_blurred"

    refused = officers.run("ivy", "watchlist", "approve", "bridge", code=2)
    assert "face:approve" in refused.stderr
    officers.run("sam", "watchlist", "approve", "bridge")
    [listed] = json_lines(officers.run("sam", "watchlist", "list", "--json").stdout)
    assert (listed["name"], listed["status"], listed["searchable"]) == ("bridge", "approved", True)
    [shown] = json_lines(officers.run("sam", "watchlist", "show", "bridge", "--json").stdout)
    assert [(e["person_ref"], e["images"]) for e in shown["entries"]] == [("P-1", 2)]
    assert "Donald Rumsfeld" in officers.run("sam", "watchlist", "show", "bridge").stdout

    incident = tmp_path / "incident"
    incident.mkdir()
    shutil.copy(lfw(shared_data, "Donald_Rumsfeld", 4), incident / "cam-1.jpg")
    shutil.copy(lfw(shared_data, "Serena_Williams", 1), incident / "cam-2.jpg")
    terms = ("--case", str(case_id), "--offence", "OP-17", "--justification", JUSTIFICATION)
    [result] = json_lines(officers.run("ivy", "search", *terms, str(incident), "--json").stdout)
    assert [(m["kind"], m["faces"], m["faces_with_candidates"]) for m in result["media"]] == [
        ("image", 1, 1),
        ("image", 1, 0),
    ]
    candidates = result["candidates"]
    assert len(candidates) == 2 and {c["person_ref"] for c in candidates} == {"P-1"}
    assert {c["probe"] for c in candidates} == {"incident/cam-1.jpg#1"}

    queue = json_lines(officers.run("rob", "review", "list", "--json").stdout)
    table = officers.run("rob", "review", "list").stdout
    assert "Donald Rumsfeld" in table and "not an identification" in table
    assert [c["id"] for c in queue] == [c["id"] for c in candidates]
    best, other = candidates[0]["id"], candidates[1]["id"]
    verdict = ("--verdict", "match", "--note", NOTE)
    assert (
        "pending_investigator"
        in officers.run("rob", "review", "operator", str(best), *verdict).stdout
    )
    officers.run("rob", "review", "operator", str(other), "--verdict", "no_match")
    pending = officers.run("ivy", "export", str(result["search_id"]), code=2)
    assert "still under review" in pending.stderr
    assert "confirmed" in officers.run("ivy", "review", "investigator", str(best), *verdict).stdout

    exported = json.loads(officers.run("ivy", "export", str(result["search_id"])).stdout)
    assert [c["id"] for c in exported["confirmed"]] == [best]
    assert exported["search"]["justification"] == JUSTIFICATION
    assert "expired watchlists: none" in officers.run(None, "purge").stdout


def _open_case(db: Database, settings: Settings, token: str) -> int:
    accounts = Accounts(db, AccountSettings.of(settings))
    principal = accounts.authenticate_token(token, TokenUse("TEST", "open a case", "case:write"))
    assert principal is not None
    with db.session() as session:
        return create_case(session, principal, "Bridge bombing").id
