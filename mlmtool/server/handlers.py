"""Every error of the web app as JSON ``{"error": message, "status": code[, "param": field]}``.

:func:`register_error_handlers` installs one handler per kind of failure; each is a plain
async function that can be called alone (``await library_error(request, exc)``):

* :class:`ApiError` (a refused request: its own status, 404/413/422/...);
* :class:`~mlmtool.errors.MlmtoolError` (the library refused the input): 400;
* :class:`~mlmtool.server.worker.BusyError`: 429 (503 while the server stops);
* pydantic's validation errors: 422, one line (:func:`validation_message`);
* Starlette's 404/405: the path or method in the message;
* anything else (a bug): 500 with a one-line message; the traceback goes to the server log.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import MlmtoolError
from .worker import BusyError


class ApiError(Exception):
    """A refusal with an HTTP status and one line (``param``: the request field, if any)."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    """``{"error": message, "status": status}`` (plus ``param`` when given) with that status."""
    body: dict[str, Any] = {"error": message, "status": status}
    if param:
        body["param"] = param
    return JSONResponse(body, status_code=status)


def validation_message(errors: list[dict]) -> str:
    """One line from pydantic's errors: ``field: what is wrong`` (the first error, plus a count)."""
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) if loc else "body"
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        msg = f"unknown field '{where}' (this endpoint does not take it)"
    elif kind == "missing":
        msg = f"{where} is required"
    elif kind in ("json_invalid", "json_type", "model_attributes_type") or where == "body":
        msg = "the body must be a JSON object (Content-Type: application/json)"
    else:
        msg = f"{where}: {first.get('msg', 'invalid value')}"
    more = len(errors) - 1
    return msg + (f" (and {more} more problem{'s' * (more > 1)})" if more > 0 else "")


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    """A refusal of the server's own (limits, unknown job, ...): its status and message."""
    return error_response(exc.status, exc.message, exc.param)


async def library_error(request: Request, exc: MlmtoolError) -> JSONResponse:
    """The library's refusal: 400 with its first line and the parameter it names."""
    return error_response(400, str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                          getattr(exc, "param", None))


async def busy_error(request: Request, exc: BusyError) -> JSONResponse:
    """Too many requests wait (429), or the server is stopping (503)."""
    return error_response(exc.status, str(exc))


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A body that does not fit its request model: 422 and :func:`validation_message`."""
    return error_response(422, validation_message(exc.errors()))


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (no such route, wrong method), with the path in the message."""
    messages = {404: f"no such page or endpoint: {request.url.path}",
                405: f"{request.method} is not allowed on {request.url.path}"}
    return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)))


async def bug(request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: 500 and the exception's type only (no internals in the answer).

    Starlette re-raises after this answer, so uvicorn logs the traceback.
    """
    return error_response(500, f"internal error ({type(exc).__name__}); the traceback is in the server log")


#: Exception type -> handler, in the order they are registered.
HANDLERS = ((ApiError, api_error), (MlmtoolError, library_error), (BusyError, busy_error),
            (RequestValidationError, invalid_request), (StarletteHTTPException, http_error),
            (Exception, bug))


def register_error_handlers(app: FastAPI) -> None:
    """Install :data:`HANDLERS` on ``app``: every error becomes JSON, never a traceback."""
    for kind, handler in HANDLERS:
        app.add_exception_handler(kind, handler)  # type: ignore[arg-type]
