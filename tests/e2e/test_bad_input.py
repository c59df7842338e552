"""Bad input never yields a 500: each case gets a clear 4xx with an OpenAI-style error body."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import SERVED_MODEL

pytestmark = pytest.mark.e2e
USER = [{"role": "user", "content": "hello"}]


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    assert {"param", "code"} <= set(error)
    if code:
        assert error["code"] == code
    return error


def test_malformed_json(http) -> None:
    response = http.post(
        "/v1/chat/completions", content=b'{"model": "x", "messages": [', headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in assert_openai_error(response, 400)["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": USER}, "model"),
        ({"model": SERVED_MODEL}, "messages"),
        ({"model": SERVED_MODEL, "messages": "hello"}, "messages"),
        ({"model": SERVED_MODEL, "messages": USER, "max_tokens": "many"}, "max_tokens"),
        ({"model": SERVED_MODEL, "messages": USER, "temperature": 7}, "temperature"),
        ({"model": SERVED_MODEL, "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"model": SERVED_MODEL, "messages": USER, "n": 2}, "n"),
    ],
)
def test_missing_or_wrong_typed_fields(http, body, param) -> None:
    error = assert_openai_error(http.post("/v1/chat/completions", json=body), 400, "invalid_request")
    assert error["param"] == param


@pytest.mark.parametrize(
    "messages", [[], [{"role": "user", "content": ""}], [{"role": "user", "content": "   "}], [{"role": "user"}]]
)
def test_empty_messages(http, messages) -> None:
    assert_openai_error(http.post("/v1/chat/completions", json={"model": SERVED_MODEL, "messages": messages}), 400)


@pytest.mark.parametrize(
    ("route", "body", "where"),
    [
        (
            "/v1/chat/completions",
            f'{{"model": "{SERVED_MODEL}", "messages": [{{"role": "user", "content": "hi \\ud800"}}]}}',
            "messages.0.content",
        ),
        ("/v1/moderations", '{"input": ["fine", "hi \\udfff there"]}', "input.1"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_where_it_is(http, route, body, where) -> None:
    """JSON lets a client escape half a UTF-16 pair; the tokenizer cannot encode it and once answered 500."""
    response = http.post(route, content=body.encode(), headers={"content-type": "application/json"})
    assert where in assert_openai_error(response, 400, "invalid_request")["message"]


@pytest.mark.parametrize("seed", [2**63, -(2**63) - 1, 2**70])
def test_a_seed_outside_int64_is_a_400(http, seed) -> None:
    body = {"model": SERVED_MODEL, "messages": USER, "seed": seed, "max_tokens": 1}
    assert assert_openai_error(http.post("/v1/chat/completions", json=body), 400, "invalid_request")["param"] == "seed"


@pytest.mark.parametrize("temperature", [5e-324, 1e-40])
def test_a_temperature_too_small_to_sample_with_decodes_greedily(http, temperature) -> None:
    """The fuzz found it: logits divided by a temperature this small overflow, and the generator answered 503."""
    body = {"model": SERVED_MODEL, "messages": USER, "temperature": temperature, "max_tokens": 1}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text


def test_an_oversized_body_is_refused_with_413_before_it_is_read_or_its_key_checked(base_url) -> None:
    """Bodies were parsed whole before the key was checked: 48 MB took 1.1 s to get its 401."""
    from serve_app.config import Settings

    limit = Settings().max_body_bytes
    body = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * (limit + 1) + b'"}]}'
    for route in ("/v1/chat/completions", "/v1/moderations"):
        response = httpx.post(f"{base_url}{route}", content=body, headers={"content-type": "application/json"})
        assert_openai_error(response, 413, "request_too_large")

    def chunks():  # no Content-Length: the limit holds as the body arrives
        yield body[: limit // 2]
        yield body[limit // 2 :]

    # A well-formed key, so that this body is read (one without a key gets its 401 unread).
    headers = {"content-type": "application/json", "Authorization": "Bearer ss-nope-nope"}
    response = httpx.post(f"{base_url}/v1/moderations", content=chunks(), headers=headers)
    assert_openai_error(response, 413, "request_too_large")


def test_a_request_without_a_key_gets_its_401_before_its_body_arrives(base_url) -> None:
    """The body was read and parsed before the 401: a client announcing 1 MB and sending a few bytes held the
    request open until it sent the rest. Now the 401 comes without the body."""
    url = urlsplit(base_url)
    for authorization in (None, "Basic dXNlcjpwYXNz"):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.putrequest("POST", "/v1/chat/completions")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", "1000000")
        if authorization:
            conn.putheader("Authorization", authorization)
        conn.endheaders(b'{"model": ')  # and never the rest: a server waiting for it times out
        try:
            response = conn.getresponse()
            error = json.loads(response.read())["error"]
        finally:
            conn.close()
        assert response.status == 401
        assert error["code"] == "missing_api_key" and error["type"] == "invalid_request_error"


def test_prompt_over_the_configured_size(http) -> None:
    big = [{"role": "user", "content": "word " * 4000}]
    response = http.post("/v1/chat/completions", json={"model": SERVED_MODEL, "messages": big})
    assert_openai_error(response, 400, "context_length_exceeded")


def test_tool_call_arguments_in_the_history_count_toward_the_prompt_size(http) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "x" * 20_000}}
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ]
    response = http.post("/v1/chat/completions", json={"model": SERVED_MODEL, "messages": history})
    assert_openai_error(response, 400, "context_length_exceeded")


def test_unknown_model(http) -> None:
    response = http.post("/v1/chat/completions", json={"model": "gpt-imaginary", "messages": USER})
    assert assert_openai_error(response, 404, "model_not_found")["param"] == "model"


def test_missing_and_wrong_api_keys(base_url) -> None:
    body = {"model": SERVED_MODEL, "messages": USER}
    assert_openai_error(httpx.post(f"{base_url}/v1/chat/completions", json=body), 401, "missing_api_key")
    for malformed in ("Basic dXNlcjpwYXNz", "Bearer", "ss-nope-nope"):
        response = httpx.post(f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": malformed})
        assert_openai_error(response, 401, "missing_api_key")
    wrong = httpx.post(f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer ss-nope-nope"})
    assert_openai_error(wrong, 401, "invalid_api_key")


def test_user_key_cannot_reach_admin_routes(http) -> None:
    assert_openai_error(http.get("/admin/reviews"), 403, "permission_denied")
    assert_openai_error(http.post("/admin/keys", json={"user_id": "me", "tier": "trusted"}), 403)


def test_admin_input_errors(base_url, admin_key) -> None:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}) as api:
        assert_openai_error(api.post("/admin/keys", json={"user_id": "dave", "tier": "platinum"}), 400, "unknown_tier")
        assert_openai_error(api.post("/admin/keys", json={"tier": "free"}), 400, "invalid_request")
        assert_openai_error(api.post("/admin/reviews/rev_missing/decision", json={"decision": "approve"}), 404)
        assert_openai_error(api.post("/admin/reviews/rev_missing/decision", json={"decision": "maybe"}), 400)
        assert_openai_error(api.delete("/admin/keys/unknown"), 404)


def test_moderation_bad_input(http) -> None:
    assert_openai_error(http.post("/v1/moderations", json={}), 400)
    assert_openai_error(http.post("/v1/moderations", json={"input": []}), 400)


def test_unknown_route_and_method(http) -> None:
    assert_openai_error(http.get("/v1/nothing-here"), 404, "not_found")
    assert_openai_error(http.get("/v1/chat/completions"), 405, "method_not_allowed")


def test_health_and_readiness(base_url) -> None:
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"redis", "intent_classifier", "generator", "moderator", "review_queue"}


def test_openapi_describes_every_route(base_url) -> None:
    spec = httpx.get(f"{base_url}/openapi.json").json()
    assert {
        "/v1/chat/completions",
        "/v1/models",
        "/v1/moderations",
        "/healthz",
        "/readyz",
        "/admin/keys",
        "/admin/keys/{key_id}",
        "/admin/reviews",
        "/admin/reviews/{item_id}",
        "/admin/reviews/{item_id}/decision",
        "/admin/audit",
    } <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
