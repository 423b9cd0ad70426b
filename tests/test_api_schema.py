"""schemathesis against the OpenAPI of a running vigil: every operation, fuzzed with valid
requests as the admin (the bootstrap token) on a fresh SQLite database, answers without a 5xx,
with a status code the schema documents and a body that fits the documented schema.

Each operation gets ``MAX_EXAMPLES`` generated requests; a failure is recorded (first line,
method and path) and fuzzing goes on, so one run lists every operation that fails. Results:
bench/results/schemathesis.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation

from vigil.api.settings import ApiSettings

from test_api_support import serving

MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
ADMIN_TOKEN = "vgl_schemathesis-bootstrap-admin-token"
# Operations that cannot be fuzzed meaningfully (none so far: the database is fresh per run).
EXCLUDED: set[str] = set()


@dataclass
class Outcome:
    label: str
    examples: int = 0
    failures: list[str] = field(default_factory=list)


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    from vigil.api.app import create_app

    api_settings = ApiSettings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'vigil.db'}",
        bootstrap_admin_token=ADMIN_TOKEN,
        actions_worker=False,  # nothing leaves the machine
    )
    with serving(create_app(api_settings)) as url:
        yield url


def _failure(case: Case, exc: BaseException) -> str:
    if isinstance(exc, FailureGroup):
        titles = sorted({f"{failure.title} ({_status(failure)})" for failure in exc.exceptions})
        return f"{case.method} {case.operation.path}: {'; '.join(titles)}"
    first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return f"{case.method} {case.formatted_path}: {first.strip()[:200]}"


def _status(failure: object) -> str:
    message = str(getattr(failure, "message", "")) or str(failure)
    found = re.search(r"\b([1-5]\d\d)\b", message)
    return found.group(1) if found else "?"


def _fuzz(operation: APIOperation, base_url: str) -> Outcome:
    outcome = Outcome(operation.label)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: a failure is not a roll of the dice
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        outcome.examples += 1
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=60)
        except (Exception, FailureGroup) as exc:  # recorded: fuzzing goes on, without shrinking
            outcome.failures.append(_failure(case, exc))

    run()
    return outcome


def test_every_operation_conforms_to_the_schema(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    outcomes: list[Outcome] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label not in EXCLUDED:
            outcomes.append(_fuzz(operation, base_url))
    failed = [o for o in outcomes if o.failures]
    examples = sum(o.examples for o in outcomes)
    print(f"\n{len(outcomes)} operations, {examples} examples, {len(failed)} failing")
    for outcome in failed:
        print(f"- {outcome.label}: {len(outcome.failures)} of {outcome.examples} failed")
        for failure in sorted(set(outcome.failures))[:3]:
            print(f"    {failure}")
    assert len(outcomes) >= 20
    assert not failed, [o.label for o in failed]
