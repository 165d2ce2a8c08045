"""One error body for every failure: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from warbler import errors

log = logging.getLogger("warbler.api")

STATUS: dict[type[errors.WarblerError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.TooLarge: 413,
    errors.UnsupportedType: 415,
    errors.RateLimited: 429,
}

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_type",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:  # fmt: skip
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: errors.WarblerError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def domain_error_response(exc: errors.WarblerError) -> JSONResponse:
    """A domain error's answer (also written by the send shortcut, api/send_shortcut.py)."""
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after_seconds" in exc.details:
        headers = {"Retry-After": str(max(1, round(exc.details["retry_after_seconds"])))}
    return error_response(status, exc.code, exc.message, exc.details, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.WarblerError)
    async def _domain(_: Request, exc: errors.WarblerError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(p["type"] == "json_invalid" for p in problems):
            return error_response(400, "malformed_json", "the request body is not valid JSON",
                                  {"errors": problems})  # fmt: skip
        return error_response(422, "invalid_request", "the request does not match the schema",
                              {"errors": problems})  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI turns any error raised while reading the body into "400 error parsing the
        # body"; a domain error there (BodyLimit's TooLarge on a chunked body) keeps its own.
        if isinstance(exc.__cause__, errors.WarblerError):
            return await _domain(request, exc.__cause__)
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        # PostgreSQL refused a character it cannot store (SQLSTATE 22021): U+0000 in a form
        # field (JSON, paths and queries are refused before, see api/nul_guard.py).
        if getattr(exc.orig, "sqlstate", None) == "22021":
            return error_response(400, "invalid_request",
                                  "text may not contain the NUL character (U+0000)")  # fmt: skip
        raise exc  # any other database error is unexpected: the handler below

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal server error; it has been logged")
