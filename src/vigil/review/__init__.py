"""Review: alerts from every detector, a priority queue with claims, decisions with four-eyes
approval, and cases. Data flows ingest → signals → match → **alert → review** → action.

Every function takes the caller's SQLAlchemy session and works inside its transaction, so an
alert, a decision, its outbox actions and their audit lines commit together or not at all::

    from vigil.review import NewAlert, ReviewPolicy, create_alert, claim_next, decide
    policy = ReviewPolicy.of(settings)
    with db.session() as session:
        alert, created = create_alert(session, NewAlert(...), weights=policy.weights, actor=...)
    with db.session() as session:
        alert = claim_next(session, principal, policy.claim_ttl)
        decide(session, principal, alert.id, "confirm", "matches the attack video")

See ``vigil.review.priority`` for the queue order and ``vigil.review.matches`` for what a hash
match does.
"""

from vigil.review.alerts import (
    QUEUE_STATUSES,
    AlertFilter,
    ContentKind,
    DetectionUpdate,
    NewAlert,
    Source,
    Status,
    alert_json,
    content_payload,
    create_alert,
    get_alert,
    list_alerts,
    recompute_priorities,
    update_detection,
    view_alert,
)
from vigil.review.cases import (
    CaseChange,
    add_alerts,
    case_alert_ids,
    create_case,
    delete_case,
    get_case,
    list_cases,
    remove_alert,
    update_case,
)
from vigil.review.claims import claim, claim_next, release
from vigil.review.decisions import OUTCOMES, Outcome, approve, decide, needs_second_person, reject
from vigil.review.errors import Conflict, NotAllowed, NotFound, ReviewError
from vigil.review.matches import BankOutcome, Sighting, alerts_from_match, match_likelihood
from vigil.review.policy import ReviewPolicy
from vigil.review.priority import PriorityWeights, base_priority, current_priority, queue_key

__all__ = [
    "OUTCOMES",
    "QUEUE_STATUSES",
    "AlertFilter",
    "BankOutcome",
    "CaseChange",
    "Conflict",
    "ContentKind",
    "DetectionUpdate",
    "NewAlert",
    "NotAllowed",
    "NotFound",
    "Outcome",
    "PriorityWeights",
    "ReviewError",
    "ReviewPolicy",
    "Sighting",
    "Source",
    "Status",
    "add_alerts",
    "alert_json",
    "alerts_from_match",
    "approve",
    "base_priority",
    "case_alert_ids",
    "claim",
    "claim_next",
    "content_payload",
    "create_alert",
    "create_case",
    "current_priority",
    "decide",
    "delete_case",
    "get_alert",
    "get_case",
    "list_alerts",
    "list_cases",
    "match_likelihood",
    "needs_second_person",
    "queue_key",
    "recompute_priorities",
    "reject",
    "release",
    "remove_alert",
    "update_case",
    "update_detection",
    "view_alert",
]
