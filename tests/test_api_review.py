"""The review API over real HTTP: alerts, the queue, claims, decisions, four-eyes, cases, scan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from test_review_support import actions_of, audit_actions, receiver
from vigil.accounts import Accounts, AccountSettings
from vigil.actions import KINDS
from vigil.api.settings import ApiSettings
from vigil.config import Settings
from vigil.store.models import Bank, Decision

from media_factory import write_jpeg
from test_api_support import Api, running_api

pytest_plugins = ["test_api_support"]


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    # No delivery worker: the tests read the outbox as decisions leave it, before any send.
    quiet = ApiSettings(**{**settings.model_dump(), "actions_worker": False})
    with running_api(quiet) as running:
        receiver(running.known.db, KINDS)
        yield running


def _second_reviewer(api: Api) -> httpx.Client:
    accounts = Accounts(api.known.db, AccountSettings.of(api.known.settings))
    accounts.create_user("test:setup", "rob", ["reviewer"])
    _, secret = accounts.create_token("test:setup", "rob", "rob-token")
    return httpx.Client(
        base_url=api.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=60
    )


def _alert(key: str, **fields: object) -> dict[str, object]:
    return {"dedupe_key": key, "source": "text", "content_kind": "text", **fields}


def test_alerts_queue_claims_and_decisions(api: Api) -> None:
    with (
        api.client("analyst") as analyst,
        api.client("reviewer") as rita,
        _second_reviewer(api) as rob,
    ):
        body = _alert("post-1", text="join us", severity=9, evidence=[{"ref": "shot.png"}])
        made = analyst.post("/v1/alerts", json=body)
        again = analyst.post("/v1/alerts", json={**body, "severity": 1})
        assert (made.status_code, again.status_code) == (201, 200)
        alert_id = made.json()["id"]
        assert again.json()["id"] == alert_id and again.json()["severity"] == 9
        low = analyst.post("/v1/alerts", json=_alert("post-2", severity=2)).json()["id"]
        assert analyst.post("/v1/alerts", json=_alert("bad", severity=11)).status_code == 422
        assert rita.post("/v1/alerts", json=_alert("x")).status_code == 403

        queue = rita.get("/v1/alerts").json()
        assert [a["id"] for a in queue] == [alert_id, low]
        assert queue[0]["priority"] > queue[1]["priority"]
        assert queue[0]["evidence_redacted"] and queue[0]["text"] == ""

        seen_by_analyst = analyst.get(f"/v1/alerts/{alert_id}").json()
        assert seen_by_analyst["evidence_redacted"] and seen_by_analyst["evidence"] == []
        seen_by_rita = rita.get(f"/v1/alerts/{alert_id}").json()
        assert seen_by_rita["text"] == "join us" and seen_by_rita["evidence"] == [
            {"ref": "shot.png"}
        ]
        assert audit_actions(api.known.db, "alert", alert_id).count("alert.view") == 1

        claimed = rita.post(f"/v1/alerts/{alert_id}/claim")
        assert claimed.status_code == 200 and claimed.json()["claim_expires_at"] is not None
        assert rob.post(f"/v1/alerts/{alert_id}/claim").status_code == 409
        refused = rob.post(
            f"/v1/alerts/{alert_id}/decisions", json={"outcome": "dismiss", "reason": "fine"}
        )
        assert refused.status_code == 409 and refused.json()["error"] == "conflict"
        assert [a["id"] for a in rob.get("/v1/alerts", params={"available": True}).json()] == [low]
        assert rob.post("/v1/alerts/next").json()["id"] == low
        assert rob.post("/v1/alerts/next").json()["id"] == low  # his own claim, extended

        decided = rita.post(
            f"/v1/alerts/{alert_id}/decisions",
            json={"outcome": "confirm", "reason": "recruitment post"},
        )
        assert decided.status_code == 201, decided.text
        assert decided.json()["approval_status"] == "not_required"
        assert rita.get(f"/v1/alerts/{alert_id}").json()["status"] == "confirmed"
        assert [d["outcome"] for d in rita.get(f"/v1/alerts/{alert_id}/decisions").json()] == [
            "confirm"
        ]
        assert actions_of(api.known.db, alert_id) == [("takedown", "pending", False)]
        assert rita.get("/v1/alerts", params={"status": "confirmed"}).json()[0]["id"] == alert_id

        assert rob.post(f"/v1/alerts/{low}/release").status_code == 200
        assert rob.post("/v1/alerts/999999/claim").status_code == 404
        with api.client("reviewer") as again_rita:
            again_rita.post(
                f"/v1/alerts/{low}/decisions", json={"outcome": "dismiss", "reason": "ok"}
            )
        assert rob.post("/v1/alerts/next").status_code == 204


def test_four_eyes(api: Api) -> None:
    with (
        api.client("analyst") as analyst,
        api.client("investigator") as ines,
        api.client("supervisor") as sue,
        api.client("reviewer") as rita,
    ):
        alert_id = analyst.post("/v1/alerts", json=_alert("threat", text="...")).json()["id"]
        decision = ines.post(
            f"/v1/alerts/{alert_id}/decisions",
            json={"outcome": "refer", "reason": "credible threat to life"},
        ).json()
        assert decision["approval_status"] == "pending"
        held = [("police_referral", "awaiting_approval", False)]
        assert actions_of(api.known.db, alert_id) == held
        assert [d["id"] for d in rita.get("/v1/decisions").json()] == [decision["id"]]

        own = ines.post(f"/v1/decisions/{decision['id']}/approve")
        assert own.status_code == 403 and own.json()["error"] == "not_allowed"
        assert rita.post(f"/v1/decisions/{decision['id']}/approve").status_code == 403
        assert actions_of(api.known.db, alert_id) == held

        approved = sue.post(f"/v1/decisions/{decision['id']}/approve")
        assert approved.status_code == 200 and approved.json()["approval_status"] == "approved"
        assert actions_of(api.known.db, alert_id) == [("police_referral", "pending", False)]
        assert sue.post(f"/v1/decisions/{decision['id']}/approve").status_code == 409
        assert rita.get(f"/v1/alerts/{alert_id}").json()["status"] == "referred"
        with api.known.db.session() as session:
            stored = session.scalars(select(Decision)).one()
            assert stored.approved_by != stored.user_id

        account = analyst.post(
            "/v1/alerts", json=_alert("acct", source="text", content_kind="account")
        ).json()["id"]
        pending = rita.post(
            f"/v1/alerts/{account}/decisions",
            json={"outcome": "confirm", "reason": "recruiter", "actions": ["block"]},
        ).json()
        rejected = ines.post(
            f"/v1/decisions/{pending['id']}/reject", json={"reason": "not the same person"}
        )
        assert rejected.json()["approval_status"] == "rejected"
        assert actions_of(api.known.db, account) == [("block", "cancelled", False)]
        assert rita.get(f"/v1/alerts/{account}").json()["status"] == "open"


def test_cases(api: Api) -> None:
    with api.client("analyst") as analyst, api.client("admin") as admin:
        ids = [analyst.post("/v1/alerts", json=_alert(f"c{n}")).json()["id"] for n in range(3)]
        case = analyst.post("/v1/cases", json={"title": "Campaign X", "kind": "campaign"})
        assert case.status_code == 201
        case_id = case.json()["id"]
        assert admin.post("/v1/cases", json={"title": "no"}).status_code == 403
        grouped = analyst.post(f"/v1/cases/{case_id}/alerts", json={"alert_ids": ids[:2]})
        assert grouped.json()["alert_ids"] == ids[:2]
        missing = analyst.post(f"/v1/cases/{case_id}/alerts", json={"alert_ids": [999999]})
        assert missing.status_code == 404
        changed = analyst.patch(f"/v1/cases/{case_id}", json={"status": "closed"}).json()
        assert (changed["status"], changed["title"]) == ("closed", "Campaign X")
        assert [c["id"] for c in admin.get("/v1/cases", params={"status": "closed"}).json()] == [
            case_id
        ]
        in_case = admin.get("/v1/alerts", params={"case_id": case_id}).json()
        assert sorted(a["id"] for a in in_case) == ids[:2]
        assert analyst.delete(f"/v1/cases/{case_id}/alerts/{ids[0]}").status_code == 204
        assert admin.get(f"/v1/cases/{case_id}").json()["alert_ids"] == [ids[1]]
        assert analyst.delete(f"/v1/cases/{case_id}").status_code == 204
        assert admin.get(f"/v1/cases/{case_id}").status_code == 404
        assert admin.get(f"/v1/alerts/{ids[1]}").json()["case_id"] is None


def test_scan_alerts_and_acts_once(api: Api, tmp_path: Path) -> None:
    evidence = write_jpeg(tmp_path / "attack.jpg", 11)
    with api.client("admin") as admin:
        admin.post("/v1/banks", json={"name": "cip"}).raise_for_status()
        files = {"file": (evidence.name, evidence.read_bytes())}
        admin.post("/v1/banks/cip/content", files=files).raise_for_status()
        with api.known.db.session() as session:
            session.execute(update(Bank).values(auto_action="takedown", severity=10))
        params = {"platform": "exampletube", "content_ref": "v/42", "reach": 1000}
        first = admin.post("/v1/scan", files=files, params=params)
        retry = admin.post("/v1/scan", files=files, params=params)
        clean = admin.post(
            "/v1/scan", files={"file": ("x.jpg", write_jpeg(tmp_path / "x.jpg", 12).read_bytes())}
        )
    assert first.status_code == 200, first.text
    (outcome,) = first.json()["alerts"]
    assert (outcome["bank"], outcome["created"], outcome["status"]) == ("cip", True, "open")
    assert len(outcome["action_ids"]) == 1
    assert first.json()["report"]["matches"][0]["bank"] == "cip"
    (again,) = retry.json()["alerts"]
    assert (again["alert_id"], again["created"], again["action_ids"]) == (
        outcome["alert_id"],
        False,
        [],
    )
    assert clean.json()["alerts"] == []
    assert actions_of(api.known.db, outcome["alert_id"]) == [("takedown", "pending", True)]
