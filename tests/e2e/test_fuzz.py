"""Schemathesis fuzzes every operation of the OpenAPI schema with a key of each role: no answer is a 5xx, and every
4xx carries the OpenAI error shape that clients parse.

The run is bounded (a fixed seed, `MAX_EXAMPLES` cases per operation, mode and role, no shrinking) so that it
fits a CI budget. Generated bodies are both schema-valid and schema-invalid; chat completions go to the served model
with at most `CHAT_MAX_TOKENS` tokens, the slow part on CPU. The console's HTML routes are not in the schema.

Hypothesis runs each operation's strategy directly: schemathesis's pytest integration (`from_fixture`) fails
under pytest 9.2, where `Function._nodeid`, which it sets, is gone.
"""

from __future__ import annotations

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.e2e.conftest import SERVED_MODEL, create_key

pytestmark = pytest.mark.e2e
ROLES = ("user", "reviewer", "admin")
SEED = 22
MAX_EXAMPLES = 20
# A chat case that reaches the model takes seconds on CPU, every other case milliseconds.
MAX_EXAMPLES_BY_OPERATION = {"POST /v1/chat/completions": 6}
CHAT_MAX_TOKENS = 2


FUZZ_CONFIG = {
    "generation": {"with-security-parameters": False},
    # Values seen in answers (key ids, user ids) must not become the ids of later revocations and erasures: the
    # fuzz would revoke the keys that other tests hold.
    "phases": {"fuzzing": {"extra-data-sources": {"responses": False}}},
}
FUZZ_SETTINGS = hypothesis.settings(
    deadline=None,
    database=None,
    phases=[hypothesis.Phase.generate],  # no shrinking: a failure is reported as found, within the time bound
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=schemathesis.Config.from_dict(FUZZ_CONFIG))


@pytest.fixture(scope="module")
def fuzz_keys(base_url: str, admin_key: str) -> dict[str, str]:
    """The fuzzer's own keys, one user per role, so that what it revokes, suspends or erases is its own."""
    return {role: create_key(base_url, admin_key, role=role, user_id=f"fuzz-{role}")["key"] for role in ROLES}


def bound_chat(case: schemathesis.Case, mode: GenerationMode) -> None:
    """A chat body asks for at most `CHAT_MAX_TOKENS` tokens. A schema-valid one also names the served model and
    has text in its turns and a user turn last, which the schema cannot require, so that it reaches the pipeline
    instead of a 404 or a 400."""
    if case.path != "/v1/chat/completions" or not isinstance(case.body, dict):
        return
    body = case.body
    body.setdefault("max_tokens", CHAT_MAX_TOKENS)
    for field in ("max_tokens", "max_completion_tokens"):
        if type(body.get(field)) is int and body[field] > CHAT_MAX_TOKENS:
            body[field] = CHAT_MAX_TOKENS
    if mode is GenerationMode.POSITIVE:
        body["model"] = SERVED_MODEL
        for message in body["messages"]:
            content = message.get("content")
            if not isinstance(content, list) and not (isinstance(content, str) and content.strip()):
                message["content"] = "hi"
        body["messages"].append({"role": "user", "content": "Say hi."})


def openai_error_problem(response: schemathesis.Response) -> str | None:
    """What is wrong with a 4xx body as an OpenAI error (`{"error": {"message", "type", "param", "code"}}`)."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return "the body is not {'error': {...}}"
    if not isinstance(error, dict):
        return "'error' is not an object"
    if not isinstance(error.get("message"), str) or not error["message"]:
        return "no 'message' string"
    if not isinstance(error.get("type"), str):
        return "no 'type' string"
    if not {"param", "code"} <= set(error):
        return "'param' or 'code' is missing"
    return None


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, headers: dict[str, str]) -> list[str]:
    """Send the operation's number of cases generated in `mode`; what was wrong with the answers."""
    problems: list[str] = []

    @hypothesis.seed(SEED)
    @hypothesis.settings(FUZZ_SETTINGS, max_examples=MAX_EXAMPLES_BY_OPERATION.get(operation.label, MAX_EXAMPLES))
    @hypothesis.given(operation.as_strategy(mode))
    def send(case: schemathesis.Case) -> None:
        bound_chat(case, mode)
        response = case.call(headers=headers, timeout=120)
        problem = "a server error" if response.status_code >= 500 else None
        if 400 <= response.status_code < 500:
            problem = openai_error_problem(response)
        if problem:
            sent = response.request  # what went out, as sent (a curl line would mask fields named like "token")
            body = sent.body.decode(errors="replace") if isinstance(sent.body, bytes) else sent.body or ""
            problems.append(
                f"{problem}: {response.status_code} {response.text[:300]}\n{sent.method} {sent.url}\n{body}"
            )

    try:
        send()
    except hypothesis.errors.Unsatisfiable:  # no input breaks the schema (e.g. a lone string path parameter)
        assert mode is GenerationMode.NEGATIVE
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_no_input_gets_a_5xx_and_every_4xx_is_an_openai_error(api_schema, fuzz_keys, role) -> None:
    headers = {"Authorization": f"Bearer {fuzz_keys[role]}"}
    problems = [
        problem
        for result in api_schema.get_all_operations()
        for mode in GenerationMode
        for problem in fuzz(result.ok(), mode, headers)
    ]
    assert not problems, f"{len(problems)} bad answers:\n\n" + "\n\n".join(problems)
