"""Action kinds and states."""

from __future__ import annotations

from typing import Final, Literal, get_args

ActionKind = Literal["takedown", "stream_cut", "police_referral", "block", "add_to_bank"]
KINDS: Final[tuple[ActionKind, ...]] = get_args(ActionKind)
#: Kinds another system carries out (``block``: stop re-uploads at the platform); each goes to
#: every enabled webhook subscribed to it.
WEBHOOK_KINDS: Final = frozenset({"takedown", "stream_cut", "police_referral", "block"})
#: Kinds vigil carries out itself, in the delivery worker.
LOCAL_KINDS: Final = frozenset({"add_to_bank"})

ActionStatus = Literal[
    "awaiting_approval", "pending", "in_flight", "delivered", "dead", "cancelled"
]
STATUSES: Final[tuple[ActionStatus, ...]] = get_args(ActionStatus)
#: States a worker may pick an action up in: pending when due, in flight when its lease ran out.
CLAIMABLE: Final = ("pending", "in_flight")
