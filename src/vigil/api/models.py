"""Request and response bodies. Responses are built from the hashing layer's ``as_json`` shapes,
so the API and the CLI's JSON output cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from vigil.accounts import Role
from vigil.hashing import HashResult, MatchReport
from vigil.hashing.media import MediaKind

#: A database id as a path or query parameter: bounded so an oversized number is a 422, not an
#: overflow deep in the database driver.
RowId = Annotated[int, annotated_types.Ge(1), annotated_types.Le(2**63 - 1)]


class SignalOut(BaseModel):
    signal_type: str
    signal: str
    quality: int | None = None
    variant: str | None = None


class HashResponse(BaseModel):
    # HashResult.as_json also carries the server-side temp path, which is no client's business.
    model_config = ConfigDict(extra="ignore")

    filename: str
    kind: MediaKind | None
    signals: list[SignalOut]

    @classmethod
    def of(cls, result: HashResult, filename: str) -> HashResponse:
        return cls.model_validate({**result.as_json(), "filename": filename})


class MatchOut(BaseModel):
    bank: str
    entry_id: int
    signal_type: str
    distance: float
    query_share: float | None
    index_share: float | None
    labels: list[str]
    source: str
    content_ref: str
    variant: str | None


class MatchReportOut(BaseModel):
    """``matches`` are actionable; when a negative (known-benign) bank matched, they move to
    ``suppressed`` and the benign matches are in ``benign``."""

    matches: list[MatchOut]
    suppressed: list[MatchOut]
    benign: list[MatchOut]

    @classmethod
    def of(cls, report: MatchReport) -> MatchReportOut:
        return cls.model_validate(report.as_json())


class MatchResponse(HashResponse):
    report: MatchReportOut


class SignalIn(BaseModel):
    signal_type: str = Field(examples=["pdq"])
    signal: str
    quality: int | None = Field(default=None, ge=0, le=100)


class BankSignalIn(SignalIn):
    labels: list[str] = Field(default_factory=list)
    source: str = Field(default="", max_length=256)
    content_ref: str = ""


class BankOut(BaseModel):
    id: int
    name: str
    description: str
    negative: bool
    enabled: bool
    pdq_threshold: int | None
    vpdq_query_share: float | None
    vpdq_index_share: float | None
    created_at: datetime
    entries: int
    signals: int


class BankCreate(BaseModel):
    name: str
    description: str = ""
    negative: bool = False
    pdq_threshold: int | None = None
    vpdq_query_share: float | None = None
    vpdq_index_share: float | None = None


class BankUpdate(BaseModel):
    """Fields left out (or null) keep their value."""

    enabled: bool | None = None
    description: str | None = None
    pdq_threshold: int | None = None
    vpdq_query_share: float | None = None
    vpdq_index_share: float | None = None


class ContentAdded(BaseModel):
    model_config = ConfigDict(extra="ignore")  # as HashResponse

    entry_id: int
    signals: list[SignalOut]

    @classmethod
    def of(cls, entry_id: int, result: HashResult) -> ContentAdded:
        return cls.model_validate({**result.as_json(), "entry_id": entry_id})


class EntriesAdded(BaseModel):
    entry_ids: list[int]


class RowErrorOut(BaseModel):
    line: int
    message: str


class ImportReport(BaseModel):
    imported: int
    errors: list[RowErrorOut]


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    roles: list[Role] = Field(min_length=1)
    password: SecretStr | None = Field(
        default=None, description="Without one the account can only use API tokens."
    )
    display_name: str = Field(default="", max_length=128)


class UserOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    disabled: bool
    has_password: bool
    created_at: datetime
    last_login_at: datetime | None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    user: str = Field(description="The account the token acts for.")
    role: Role | None = Field(
        default=None, description="Limit the token to this one of the user's roles."
    )


class TokenOut(BaseModel):
    name: str
    user: str | None
    scope: str = Field(description="The one role the token is limited to; empty: all the user's.")
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. Shown once; only its SHA-256 is stored.")


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    username: str
    roles: list[str]
    csrf_token: str | None = Field(
        description="Send it as `X-CSRF-Token` with every change; null when signed in by token."
    )


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    database: bool
    index: bool
