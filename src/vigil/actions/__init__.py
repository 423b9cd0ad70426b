"""Actions leave vigil through a transactional outbox: queued in the transaction that decides
them (:func:`enqueue`), delivered at least once by :class:`OutboxWorker` with an HMAC signature
and an idempotency key, retried with backoff, and parked as dead letters when they cannot be.
"""

from vigil.actions.delivery import OutboxWorker
from vigil.actions.kinds import KINDS, STATUSES, WEBHOOK_KINDS, ActionKind, ActionStatus
from vigil.actions.outbox import (
    ActionError,
    ActionNotFound,
    cancel,
    enqueue,
    list_actions,
    release,
    retry,
)
from vigil.actions.signing import sign, verify_signature

__all__ = [
    "KINDS",
    "STATUSES",
    "WEBHOOK_KINDS",
    "ActionError",
    "ActionKind",
    "ActionNotFound",
    "ActionStatus",
    "OutboxWorker",
    "cancel",
    "enqueue",
    "list_actions",
    "release",
    "retry",
    "sign",
    "verify_signature",
]
