"""Accounts and API tokens (the same operations as ``vigil user ...``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from vigil.accounts import (
    ALL_ROLES,
    AccountError,
    AccountExists,
    AccountNotFound,
    Accounts,
    Principal,
)
from vigil.api.auth import Require, accounts
from vigil.api.errors import ApiError, ErrorBody
from vigil.api.models import TokenCreate, TokenCreated, TokenOut, UserCreate, UserOut

router = APIRouter(
    prefix="/v1",
    tags=["accounts"],
    responses={
        404: {"model": ErrorBody, "description": "No such user or token."},
        409: {"model": ErrorBody, "description": "The name is taken."},
    },
)

Store = Annotated[Accounts, Depends(accounts)]
UserAdmin = Annotated[Principal, Depends(Require("user:admin"))]
TokenAdmin = Annotated[Principal, Depends(Require("token:admin"))]


def _api_error(exc: AccountError) -> ApiError:
    if isinstance(exc, AccountNotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, AccountExists):
        return ApiError(409, "exists", str(exc))
    return ApiError(422, "invalid_account_request", str(exc))


@router.get("/users")
def list_users(_: UserAdmin, store: Store) -> list[UserOut]:
    return [UserOut(**asdict(info)) for info in store.list_users()]


@router.post("/users", status_code=201)
def create_user(body: UserCreate, caller: UserAdmin, store: Store) -> UserOut:
    password = body.password.get_secret_value() if body.password else None
    try:
        info = store.create_user(
            caller.actor, body.username, list(body.roles), password, body.display_name
        )
    except AccountError as exc:
        raise _api_error(exc) from None
    return UserOut(**asdict(info))


@router.post("/users/{username}/disable")
def disable_user(username: str, caller: UserAdmin, store: Store) -> UserOut:
    """Disable the account; its sessions and tokens stop working at once."""
    try:
        return UserOut(**asdict(store.disable_user(caller.actor, username)))
    except AccountError as exc:
        raise _api_error(exc) from None


@router.get("/tokens")
def list_tokens(_: TokenAdmin, store: Store) -> list[TokenOut]:
    return [TokenOut(**asdict(info)) for info in store.list_tokens()]


@router.post("/tokens", status_code=201)
def create_token(body: TokenCreate, caller: TokenAdmin, store: Store) -> TokenCreated:
    try:
        info, secret = store.create_token(
            caller.actor, body.user, body.name, body.role or ALL_ROLES
        )
    except AccountError as exc:
        raise _api_error(exc) from None
    return TokenCreated(**asdict(info), token=secret)


@router.post("/tokens/{name}/disable")
def disable_token(name: str, caller: TokenAdmin, store: Store) -> TokenOut:
    try:
        return TokenOut(**asdict(store.disable_token(caller.actor, name)))
    except AccountError as exc:
        raise _api_error(exc) from None
