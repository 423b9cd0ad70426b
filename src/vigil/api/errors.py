"""One error shape for every failure: ``{"error": <machine-readable code>, "detail": ...}``."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from vigil.hashing import BankError, BankExists, BankNotFound


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: object, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def _response(
    status: int, error: str, detail: object, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=error, detail=jsonable_encoder(detail))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _response(exc.status, exc.error, exc.detail, exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _response(exc.status_code, _slug(exc.status_code), exc.detail, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The input echoed back in each error may be a whole request body; the location and message
    # are what a client needs.
    errors = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return _response(422, "invalid_request", errors)


async def _bank_not_found(_: Request, exc: Exception) -> JSONResponse:
    return _response(404, "bank_not_found", str(exc))


async def _bank_exists(_: Request, exc: Exception) -> JSONResponse:
    return _response(409, "bank_exists", str(exc))


async def _bank_error(_: Request, exc: Exception) -> JSONResponse:
    return _response(422, "invalid_bank_request", str(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Starlette picks the handler of the most specific class, so BankNotFound wins over BankError.
    app.add_exception_handler(BankNotFound, _bank_not_found)
    app.add_exception_handler(BankExists, _bank_exists)
    app.add_exception_handler(BankError, _bank_error)
