"""The API-key presence check: a request to a key route without `Authorization: Bearer <key>` gets its 401 before
its body is read (it used to be read and parsed whole, up to the 1 MiB cap, before the route's 401)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from fastapi.security import HTTPBearer
from starlette.requests import Request

from serve_app.main import KEY_ROUTE_PREFIXES, create_app
from serve_app.middleware import ApiKeyPresenceMiddleware
from serve_app.routers.litellm_guardrail import GUARDRAIL_PATH

MALFORMED = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer    ",
    "Basic dXNlcjpwYXNz",
    "Token ss-abc",
    "ss-abc",
    "Bearerss-abc",
]
WELL_FORMED = ["Bearer ss-abc", "bearer ss-abc", "BEARER ss-abc", "Bearer  ss-abc ", "Bearer ss abc"]


def http_scope(path: str, authorization: str | None, x_api_key: str | None = None) -> dict:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"1000000")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    if x_api_key is not None:
        headers.append((b"x-api-key", x_api_key.encode()))
    return {"type": "http", "method": "POST", "path": path, "headers": headers, "state": {"request_id": "req-1"}}


def run_middleware(scope: dict) -> tuple[list[dict], bool]:
    """The messages sent back, and whether the inner app was reached. The body never arrives: `receive` waits
    forever, so a check that read it would time out here."""
    sent: list[dict] = []
    reached = False

    async def receive() -> dict:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    async def inner(scope, receive, send) -> None:
        nonlocal reached
        reached = True

    async def main() -> None:
        middleware = ApiKeyPresenceMiddleware(inner, KEY_ROUTE_PREFIXES, x_api_key_paths=(GUARDRAIL_PATH,))
        await asyncio.wait_for(middleware(scope, receive, send), 5)

    asyncio.run(main())
    return sent, reached


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/moderations", "/admin/keys", "/admin/reviews/claim"])
@pytest.mark.parametrize("authorization", MALFORMED)
def test_no_or_a_malformed_key_gets_the_routes_401_without_the_body_being_read(path, authorization) -> None:
    sent, reached = run_middleware(http_scope(path, authorization))
    assert not reached
    assert sent[0]["status"] == 401
    error = json.loads(sent[1]["body"])["error"]
    assert error == {
        "message": "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
        "type": "invalid_request_error",
        "param": None,
        "code": "missing_api_key",
        "request_id": "req-1",
    }


@pytest.mark.parametrize("authorization", WELL_FORMED)
def test_a_bearer_token_goes_on_to_the_route_which_checks_it(authorization) -> None:
    assert run_middleware(http_scope("/v1/chat/completions", authorization)) == ([], True)


@pytest.mark.parametrize("x_api_key", ["ss-abc", " ss-abc "])
def test_the_guardrail_route_also_takes_the_key_in_x_api_key_as_litellm_sends_it(x_api_key) -> None:
    assert run_middleware(http_scope(GUARDRAIL_PATH, None, x_api_key)) == ([], True)
    assert run_middleware(http_scope(GUARDRAIL_PATH, "Bearer ss-abc")) == ([], True)


@pytest.mark.parametrize("x_api_key", [None, "", "   "])
def test_the_guardrail_route_without_a_key_gets_a_401_that_names_both_headers(x_api_key) -> None:
    sent, reached = run_middleware(http_scope(GUARDRAIL_PATH, None, x_api_key))
    assert not reached and sent[0]["status"] == 401
    assert "x-api-key" in json.loads(sent[1]["body"])["error"]["message"]


def test_x_api_key_counts_only_on_the_guardrail_route() -> None:
    sent, reached = run_middleware(http_scope("/v1/chat/completions", None, "ss-abc"))
    assert not reached and sent[0]["status"] == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs", "/console/login", "/console"])
def test_open_and_cookie_routes_need_no_key_here(path) -> None:
    assert run_middleware(http_scope(path, None)) == ([], True)


@pytest.mark.parametrize("authorization", MALFORMED + WELL_FORMED)
def test_it_refuses_exactly_what_the_routes_own_bearer_scheme_refuses(authorization) -> None:
    """The same header is a missing key to both, so a caller gets the same 401 from either."""
    credentials = asyncio.run(HTTPBearer(auto_error=False)(Request(http_scope("/v1/models", authorization))))
    refused = credentials is None or not credentials.credentials
    assert refused == (not run_middleware(http_scope("/v1/models", authorization))[1])


def test_the_key_prefixes_cover_exactly_the_routes_that_take_a_key() -> None:
    """A route added under a key prefix without a key, or with one elsewhere, would make the 401s of the middleware
    and of the route disagree. The schema says which operations take the bearer key (`authenticate`'s scheme)."""
    app = create_app(SimpleNamespace(settings=SimpleNamespace(max_body_bytes=1024)))
    operations = [(path, op) for path, ops in app.openapi()["paths"].items() for op in ops.values()]
    for path, operation in operations:
        assert path.startswith(KEY_ROUTE_PREFIXES) == ("security" in operation), path
    assert sum(path.startswith(KEY_ROUTE_PREFIXES) for path, _ in operations) >= 20
