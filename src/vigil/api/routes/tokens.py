"""API token administration (the same operations as ``vigil token``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from vigil.api.auth import (
    Require,
    TokenError,
    TokenExists,
    TokenInfo,
    TokenNotFound,
    TokenStore,
    token_store,
)
from vigil.api.errors import ApiError
from vigil.api.models import TokenCreate, TokenCreated, TokenOut

router = APIRouter(
    prefix="/v1/tokens", tags=["tokens"], dependencies=[Depends(Require("token:admin"))]
)


Tokens = Annotated[TokenStore, Depends(token_store)]


def _out(info: TokenInfo) -> TokenOut:
    return TokenOut(**asdict(info))


@router.get("")
def list_tokens(tokens: Tokens) -> list[TokenOut]:
    return [_out(info) for info in tokens.list_tokens()]


@router.post("", status_code=201)
def create_token(body: TokenCreate, tokens: Tokens) -> TokenCreated:
    try:
        info, secret = tokens.create(body.name, body.role)
    except TokenExists as exc:
        raise ApiError(409, "token_exists", str(exc)) from None
    except TokenError as exc:
        raise ApiError(422, "invalid_token_request", str(exc)) from None
    return TokenCreated(**asdict(info), token=secret)


@router.post("/{name}/disable")
def disable_token(name: str, tokens: Tokens) -> TokenOut:
    try:
        return _out(tokens.disable(name))
    except TokenNotFound as exc:
        raise ApiError(404, "token_not_found", str(exc)) from None
