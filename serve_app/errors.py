"""One exception hierarchy for everything a caller can be told, mapped to OpenAI-style error bodies.

Body: `{"error": {"message", "type", "param", "code", ...}}` as the OpenAI API sends, so the official
clients raise their usual exception classes (BadRequestError, AuthenticationError, RateLimitError, ...).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from deployments.logs import get_logger
from serve_app.metrics import INFRA_ERRORS

logger = get_logger("errors")


class SafeServeError(Exception):
    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.code
        self.headers = headers
        self.extra = extra


class InvalidRequest(SafeServeError):
    status_code = 400
    error_type = "invalid_request_error"


class PolicyViolation(InvalidRequest):
    """A safety layer refused the input. `layer` and `category` say which and why."""

    code = "content_policy_violation"


class NotAuthenticated(SafeServeError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class MissingApiKey(NotAuthenticated):
    """No `Authorization: Bearer <key>` header, or one in another form."""

    code = "missing_api_key"

    def __init__(self, how: str = "'Authorization: Bearer <key>'") -> None:
        super().__init__(f"You didn't provide an API key. Send it as {how}.")


class PermissionDenied(SafeServeError):
    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"


class CapabilityNotAllowed(PermissionDenied):
    code = "capability_not_allowed"


class UserSuspended(PermissionDenied):
    code = "user_suspended"


class RateLimited(SafeServeError):
    """A limit refused the request; `type` says which ("requests" or "tokens"), as OpenAI's body does."""

    status_code = 429
    error_type = "requests"
    code = "rate_limit_exceeded"


class QuotaExceeded(RateLimited):
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class NotFound(SafeServeError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(SafeServeError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class ServiceUnavailable(SafeServeError):
    """Infrastructure the request needs did not answer; safety layers fail closed with this."""

    status_code = 503
    error_type = "server_error"
    code = "service_unavailable"


def error_body(
    message: str, error_type: str, code: str | None, param: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code, **extra}}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _describe(error: dict[str, Any]) -> tuple[str, str | None]:
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    if error.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    prefix = f"'{param}': " if param else ""
    return f"{prefix}{error.get('msg', 'invalid value')}", param


def error_response(error: SafeServeError, request_id: str | None) -> JSONResponse:
    """The answer for `error`; an ASGI app too, for middleware that answers before any route runs."""
    body = error_body(error.message, error.error_type, error.code, error.param, request_id=request_id, **error.extra)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def _respond(request: Request, error: SafeServeError) -> JSONResponse:
    return error_response(error, _request_id(request))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SafeServeError)
    async def _safeserve(request: Request, exc: SafeServeError) -> JSONResponse:
        return _respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message, param = _describe(errors[0]) if errors else ("Invalid request.", None)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return _respond(request, InvalidRequest(message, param=param, code="invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        error = InvalidRequest(str(exc.detail), code=codes.get(exc.status_code), headers=getattr(exc, "headers", None))
        error.status_code = exc.status_code
        return _respond(request, error)

    @app.exception_handler(RedisError)
    async def _redis(request: Request, exc: RedisError) -> JSONResponse:
        INFRA_ERRORS.inc(tags={"component": "redis", "outcome": "request_failed"})
        logger.error("Redis failed on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
        error = ServiceUnavailable("Storage is unavailable; please retry.", code="storage_unavailable")
        return _respond(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        error = SafeServeError("The server had an error while processing your request.", code="internal_error")
        return _respond(request, error)
