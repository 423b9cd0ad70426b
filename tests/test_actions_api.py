"""Webhooks and actions over HTTP and the CLI, with the delivery worker running inside the app
and a real receiver on localhost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from test_actions_support import SECRET, Outbox
from vigil import actions
from vigil.accounts import Accounts, AccountSettings
from vigil.api.app import create_app
from vigil.cli.actions import actions_app, webhook_app
from vigil.config import get_settings
from vigil.hashing import KnownContent
from vigil.store.models import AuditEvent

from test_api_support import Api, role_tokens, running_api, serving

pytest_plugins = ["test_actions_support", "test_api_support"]
# Bounds on waiting for the app's background worker, not something a test measures.
_POLLS = 500


@pytest.fixture
def outbox_api(outbox: Outbox) -> Iterator[Api]:
    settings = outbox.settings.model_copy(update={"actions_poll_seconds": 0.05})
    with running_api(settings) as api:
        yield api


def _settled(client: httpx.Client, action_id: int) -> dict[str, Any]:
    """The action once the app's worker has finished with it (delivered or dead)."""
    pause = threading.Event()
    for _ in range(_POLLS):
        action: dict[str, Any] = client.get(f"/v1/actions/{action_id}").json()
        if action["status"] in ("delivered", "dead"):
            return action
        pause.wait(0.02)
    raise AssertionError(f"action {action_id} still {action['status']}")


def test_webhook_secrets_are_shown_once_and_never_again(outbox: Outbox, outbox_api: Api) -> None:
    with outbox_api.client("admin") as admin:
        created = admin.post(
            "/v1/webhooks",
            json={"name": "platform", "url": outbox.receiver.url, "kinds": ["takedown"]},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        webhook_id = created.json()["id"]
        assert secret.startswith("whsec_")
        seen = [
            admin.get("/v1/webhooks").text,
            admin.get(f"/v1/webhooks/{webhook_id}").text,
            admin.patch(f"/v1/webhooks/{webhook_id}", json={"kinds": ["stream_cut"]}).text,
        ]
        duplicate = admin.post(
            "/v1/webhooks",
            json={"name": "platform", "url": outbox.receiver.url, "kinds": ["takedown"]},
        )
        assert admin.delete(f"/v1/webhooks/{webhook_id}").status_code == 204
        assert admin.get(f"/v1/webhooks/{webhook_id}").status_code == 404
    assert all(secret not in text and "secret" not in text for text in seen)
    assert '"kinds":["stream_cut"]' in seen[2]
    assert duplicate.status_code == 409
    with outbox.db.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.object_type == "webhook"))
        logged = [(event.action, str(event.detail)) for event in events]
    assert [action for action, _ in logged] == [
        "webhook.create",
        "webhook.update",
        "webhook.delete",
    ]
    assert all(secret not in detail for _, detail in logged)


def test_webhook_urls_to_private_addresses_are_refused(outbox: Outbox, outbox_api: Api) -> None:
    with outbox_api.client("admin") as admin:
        for url in ("http://10.1.2.3/hook", "http://169.254.169.254/latest", "file:///etc/passwd"):
            refused = admin.post(
                "/v1/webhooks", json={"name": "x", "url": url, "kinds": ["takedown"]}
            )
            assert refused.status_code == 422, url
            assert refused.json()["error"] == "invalid_webhook"
        unknown_kind = admin.post(
            "/v1/webhooks", json={"name": "x", "url": outbox.receiver.url, "kinds": ["nuke"]}
        )
    assert unknown_kind.status_code == 422


def test_the_app_delivers_dead_letters_show_and_retry_revives(
    outbox: Outbox, outbox_api: Api
) -> None:
    outbox.webhook()
    outbox.receiver.fail_next(1, status=410)
    (dead_id,) = outbox.enqueue("takedown")
    with outbox_api.client("investigator") as investigator, outbox_api.client("admin") as admin:
        dead = _settled(investigator, dead_id)
        assert dead["status"] == "dead"
        assert dead["last_error"] == "HTTP 410: the receiver refused it"
        assert [a["status_code"] for a in dead["history"]] == [410]
        assert dead["payload"] == {"reason": "test"}  # investigators may view evidence
        assert admin.get(f"/v1/actions/{dead_id}").json()["payload"] is None
        listed = investigator.get("/v1/actions", params={"status": "dead"}).json()
        assert [a["id"] for a in listed["actions"]] == [dead_id]

        assert investigator.post(f"/v1/actions/{dead_id}/retry").status_code == 403
        retried = admin.post(f"/v1/actions/{dead_id}/retry")
        assert retried.status_code == 200, retried.text
        delivered = _settled(investigator, dead_id)
        again = admin.post(f"/v1/actions/{dead_id}/retry")
        missing = admin.post("/v1/actions/999999/retry")
    assert delivered["status"] == "delivered"
    assert [a["status_code"] for a in delivered["history"]] == [410, 200]
    assert again.status_code == 409
    assert missing.status_code == 404
    assert list(outbox.receiver.deliveries) == [delivered["idempotency_key"]]


def test_an_app_restart_loses_nothing(outbox: Outbox) -> None:
    """Actions committed while no worker runs (vigil down) go out when it comes back."""
    outbox.webhook()
    settings = outbox.settings.model_copy(update={"actions_poll_seconds": 0.05})
    known = KnownContent(settings)
    admin_token = role_tokens(Accounts(known.db, AccountSettings.of(settings)))["admin"]
    headers = {"Authorization": f"Bearer {admin_token}"}
    try:
        down = create_app(settings.model_copy(update={"actions_worker": False}), known)
        with serving(down) as url, httpx.Client(base_url=url, headers=headers) as admin:
            ids = outbox.enqueue("takedown") + outbox.enqueue("takedown")
            statuses = [admin.get(f"/v1/actions/{i}").json()["status"] for i in ids]
        with (
            serving(create_app(settings, known)) as url,
            httpx.Client(base_url=url, headers=headers) as admin,
        ):
            settled = [_settled(admin, action_id) for action_id in ids]
    finally:
        known.close()
    assert statuses == ["pending", "pending"]
    assert [a["status"] for a in settled] == ["delivered", "delivered"]
    assert set(outbox.receiver.deliveries) == {a["idempotency_key"] for a in settled}


@pytest.fixture
def cli_env(outbox: Outbox) -> Iterator[dict[str, str]]:
    env = {
        "VIGIL_HOME": str(outbox.settings.home),
        "VIGIL_DATABASE_URL": outbox.settings.resolved_database_url,
        "VIGIL_URL_FETCH_ALLOW": '["127.0.0.0/8"]',
        "VIGIL_ACTIONS_BACKOFF_BASE_SECONDS": "60",
    }
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_cli_webhooks_and_foreground_delivery(outbox: Outbox, cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    url = outbox.receiver.url
    added = runner.invoke(
        webhook_app, ["add", "platform", url, "--kind", "takedown", "--secret-stdin"],
        input=SECRET + "\n", env=cli_env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert SECRET not in added.stdout
    private = runner.invoke(
        webhook_app, ["add", "lan", "http://192.168.1.5/", "--kind", "takedown"], env=cli_env
    )
    assert private.exit_code == 2
    assert "non-public" in private.output

    ids = outbox.enqueue("takedown") + outbox.enqueue("takedown")
    outbox.receiver.fail_next(1, status=400)
    delivered = runner.invoke(actions_app, ["deliver", "--once"], env=cli_env)
    assert delivered.exit_code == 0, delivered.output
    assert sorted(outbox.statuses().values()) == ["dead", "delivered"]

    listed = runner.invoke(actions_app, ["list", "--dead"], env=cli_env)
    (dead_id,) = [i for i in ids if outbox.action(i).status == "dead"]
    assert "HTTP 400" in listed.stdout
    assert str(dead_id) in listed.stdout
    assert runner.invoke(webhook_app, ["disable", "platform"], env=cli_env).exit_code == 0
    assert "disabled" in runner.invoke(webhook_app, ["list"], env=cli_env).stdout
    assert runner.invoke(actions_app, ["retry", str(dead_id)], env=cli_env).exit_code == 0
    runner.invoke(actions_app, ["deliver", "--once"], env=cli_env)
    assert outbox.action(dead_id).last_error == "webhook 'platform' is disabled"
    with outbox.db.session() as session:
        assert len(actions.list_actions(session, statuses=["dead"])) == 1
