"""The audit log: who did what, when, to which object; hash-chained so tampering shows.

Other modules call :func:`record` inside the transaction that makes the change it records.
"""

from vigil.audit.log import (
    GENESIS,
    VerifyReport,
    as_json,
    event_hash,
    evidence_viewed,
    export_jsonl,
    record,
    searched,
    verify,
)

__all__ = [
    "GENESIS",
    "VerifyReport",
    "as_json",
    "event_hash",
    "evidence_viewed",
    "export_jsonl",
    "record",
    "searched",
    "verify",
]
