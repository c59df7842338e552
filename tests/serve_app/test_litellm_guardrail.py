"""LiteLLM's Generic Guardrail API route (serve_app/routers/litellm_guardrail.py), driven through the app against
a real gateway on the test redis-server (keys, limits, reputation, incidents) with scripted model deployments: the
contract LiteLLM 1.108.7 reads (docs/litellm.md), which stack runs for which input type, who a check is for, and
decisions recorded once per LiteLLM call."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
import redis.asyncio as aioredis

from classifiers.taxonomy import Category
from classifiers.verdict import Action, Redaction, Verdict
from serve_app.config import IngressConfig
from serve_app.guardrail import acting_for
from serve_app.main import create_app
from serve_app.routers.litellm_guardrail import GUARDRAIL_PATH
from serve_app.schemas.admin import ApiKeyInfo
from tests.serve_app.scripted import ScriptedHandle, ScriptedReviewQueue, incidents_of, on_redis, scripted_gateway

EMAIL = re.compile(r"[\w.]+@[\w.]+\.\w+")
CONFIG = IngressConfig(
    input_patterns=[{"name": "pipe-bomb", "category": "weapons_cbrn", "pattern": r"pipe bomb"}],
    tiers={
        "standard": {"max_tokens": 256, "tools": [{"pattern": "get_weather"}]},
        "limited": {"max_tokens": 256, "limits": {"requests_per_minute": 1}},
    },
    guardrail_api={"stream_holdback_chars": 10},
    review_modes={"self_harm": "hold"},
)
# Texts the stand-in intent classifier sends to review: in an async category, and in a `hold` one.
REVIEWED = {"zebra-review": Category.HARASSMENT, "zebra-hold": Category.SELF_HARM}


class World:
    """A real gateway on the test Redis, with scripted model deployments that record what they were asked."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.classified: list[list[list[str]]] = []
        self.moderated: list[str] = []
        queue = ScriptedReviewQueue()
        self.reviews = queue.items

        async def classify(turn_views, strict):
            self.classified.append(turn_views)
            category = next((c for word, c in REVIEWED.items() if any(word in t[0] for t in turn_views)), None)
            if category is not None:
                return Verdict(
                    layer="intent_classifier", action=Action.REVIEW, category=category, score=0.6,
                    flagged=frozenset({category}),
                )  # fmt: skip
            return Verdict(layer="intent_classifier")

        async def moderate(text, question, strict):
            self.moderated.append(text)
            if "zebra" in text:
                return Verdict(
                    layer="moderator", action=Action.BLOCK, category=Category.VIOLENCE, score=0.99,
                    flagged=frozenset({Category.VIOLENCE}),
                )  # fmt: skip
            spans = [Redaction("email", Category.PRIVACY, m.start(), m.end(), "[email]") for m in EMAIL.finditer(text)]
            reasons = ("redacted:email",) if spans else ()  # as the Moderator says it (sensitive_data.py)
            return Verdict(layer="moderator", reasons=reasons, redactions=tuple(spans))

        self.gateway = scripted_gateway(
            client,
            CONFIG,
            intent=ScriptedHandle(classify=classify),
            moderator=ScriptedHandle(moderate=moderate),
            reviews=ScriptedHandle(enqueue=queue.enqueue),
        )
        self.app = create_app(self.gateway)

    async def key(self, role: str = "gateway", tier: str = "standard") -> tuple[str, str]:
        user = f"owner-{uuid.uuid4().hex[:8]}"
        created = await self.gateway.keys.create(user, tier, role)
        return created.key, user

    async def check(self, body: dict, key: str | None, header: str = "x-api-key") -> httpx.Response:
        headers = {} if key is None else {header: key if header == "x-api-key" else f"Bearer {key}"}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            return await http.post(GUARDRAIL_PATH, json=body, headers=headers)

    async def incidents_of(self, user_id: str) -> list[dict]:
        return await incidents_of(self.gateway.redis, user_id)


def run(redis_server, scenario):
    async def in_world(client: aioredis.Redis):
        return await scenario(World(client))

    return on_redis(redis_server, in_world)


def request_body(*messages: tuple[str, str], user: str | None = "lite-user-1", **fields) -> dict:
    """A body as LiteLLM sends one for a pre_call check (texts: what its handler extracted, every role)."""
    return {
        "input_type": "request",
        "texts": [content for _role, content in messages],
        "structured_messages": [{"role": role, "content": content} for role, content in messages],
        "model": "scripted",
        "request_data": {"user_api_key_user_id": user, "user_api_key_hash": "abc"},
        "litellm_call_id": str(uuid.uuid4()),
        "litellm_version": "1.108.7",
        "request_headers": {"user-agent": "curl", "authorization": "[present]"},
        **fields,
    }


def response_body(*texts: str, call_id: str | None = None, user: str | None = "lite-user-1", **fields) -> dict:
    return {
        "input_type": "response",
        "texts": list(texts),
        "model": "scripted-upstream",
        "request_data": {"user_api_key_user_id": user},
        "litellm_call_id": call_id or str(uuid.uuid4()),
        **fields,
    }


def test_a_benign_request_passes_and_the_input_stack_reads_every_message_but_the_assistants(redis_server) -> None:
    async def scenario(world: World):
        key, _ = await world.key()
        body = request_body(("system", "Be brief."), ("assistant", "Earlier answer."), ("user", "Hello there"))
        response = await world.check(body, key)
        assert response.status_code == 200, response.text
        assert response.json() == {"action": "NONE"}
        assert [turn[0] for turn in world.classified[0]] == ["Be brief.", "Hello there"]
        assert world.moderated == []  # a request runs the input stack only

    run(redis_server, scenario)


def test_a_harmful_request_is_blocked_and_recorded_for_the_litellm_user(redis_server) -> None:
    async def scenario(world: World):
        key, owner = await world.key()
        response = await world.check(request_body(("user", "How do I build a pipe bomb?")), key)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["action"] == "BLOCKED" and "input_patterns" in answer["blocked_reason"]
        (record,) = await world.incidents_of(f"{owner}:lite-user-1")
        assert record["action"] == "block" and record["route"] == GUARDRAIL_PATH
        named = await world.gateway.reputation.standing(f"{owner}:lite-user-1", CONFIG.reputation)
        own = await world.gateway.reputation.standing(owner, CONFIG.reputation)
        assert named.score < own.score == CONFIG.reputation.initial

    run(redis_server, scenario)


def test_a_review_verdict_queues_a_review_and_in_a_hold_category_blocks(redis_server) -> None:
    """LiteLLM cannot deliver an answer a reviewer releases later: a `hold` category refuses the request, and the
    reviewer still gets the item (as an async one)."""

    async def scenario(world: World):
        key, owner = await world.key()
        passed = (await world.check(request_body(("user", "Tell me about zebra-review")), key)).json()
        assert passed == {"action": "NONE"}
        held = (await world.check(request_body(("user", "Tell me about zebra-hold")), key)).json()
        assert held["action"] == "BLOCKED" and "human review" in held["blocked_reason"]
        assert [(item.category, item.mode, item.user_id) for item in world.reviews] == [
            (Category.HARASSMENT, "async", f"{owner}:lite-user-1"),
            (Category.SELF_HARM, "async", f"{owner}:lite-user-1"),
        ]

    run(redis_server, scenario)


def test_tools_pass_the_capability_gate_and_their_definitions_are_screened(redis_server) -> None:
    async def scenario(world: World):
        key, _ = await world.key()
        weather = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city"}}
        shell = {"type": "function", "function": {"name": "run_shell"}}
        allowed = await world.check(request_body(("user", "Weather?"), tools=[weather]), key)
        assert allowed.json() == {"action": "NONE"}
        assert world.classified[-1][-1][0] == "get_weather Weather in a city"  # the tool definitions: one more turn
        refused = (await world.check(request_body(("user", "Weather?"), tools=[shell]), key)).json()
        assert refused["action"] == "BLOCKED" and "run_shell" in refused["blocked_reason"]

    run(redis_server, scenario)


def test_an_email_in_an_answer_comes_back_redacted_with_the_stream_holdback(redis_server) -> None:
    async def scenario(world: World):
        key, owner = await world.key()
        text = "Write to ada@example.org today."
        answer = (await world.check(response_body(text, "A second choice."), key)).json()
        assert answer == {
            "action": "GUARDRAIL_INTERVENED",
            "texts": ["Write to [email] today.", "A second choice."],
            "stream_holdback_chars": [10, 10],
        }
        assert world.classified == []  # a response runs the output stack only
        (record,) = await world.incidents_of(f"{owner}:lite-user-1")
        assert record["action"] == "allow" and "redacted:email" in record["reasons"]

    run(redis_server, scenario)


def test_the_holdback_covers_a_digit_run_still_open_at_the_end(redis_server) -> None:
    async def scenario(world: World):
        key, _ = await world.key()
        answer = (await world.check(response_body("Call me on 0123 456 78"), key)).json()
        assert answer["action"] == "NONE" and answer["stream_holdback_chars"] == [len("0123 456 78")]

    run(redis_server, scenario)


def test_an_abusive_answer_checked_on_every_round_of_a_stream_is_recorded_once(redis_server) -> None:
    async def scenario(world: World):
        key, owner = await world.key()
        call_id = str(uuid.uuid4())
        words = "one two three zebra four five".split()
        answers = [
            (await world.check(response_body(" ".join(words[:n]), call_id=call_id), key)).json()
            for n in range(1, len(words) + 1)
        ]
        assert [a["action"] for a in answers] == ["NONE"] * 3 + ["BLOCKED"] * 3
        assert "moderator" in answers[-1]["blocked_reason"] and "zebra" not in answers[-1]["blocked_reason"]
        records = await world.incidents_of(f"{owner}:lite-user-1")
        assert [r["action"] for r in records] == ["block"]

    run(redis_server, scenario)


def test_tool_call_arguments_are_moderated_and_cannot_come_back_redacted(redis_server) -> None:
    async def scenario(world: World):
        key, _ = await world.key()

        def call(arguments: str) -> list[dict]:
            return [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]

        clean = (await world.check(response_body(tool_calls=call('{"city": "Paris"}')), key)).json()
        assert clean["action"] == "NONE"
        email = (await world.check(response_body(tool_calls=call('{"to": "ada@example.org"}')), key)).json()
        assert email["action"] == "BLOCKED"  # LiteLLM takes no tool calls back: it cannot be redacted
        gated = [{"id": "c2", "function": {"name": "run_shell", "arguments": "{}"}}]
        assert (await world.check(response_body("ok", tool_calls=gated), key)).json()["action"] == "BLOCKED"

    run(redis_server, scenario)


def test_the_answers_of_a_stream_do_not_spend_the_request_limit(redis_server) -> None:
    async def scenario(world: World):
        key, _ = await world.key(tier="limited")  # one request a minute
        assert (await world.check(request_body(("user", "Hi")), key)).json() == {"action": "NONE"}
        for n in range(3):
            assert (await world.check(response_body("word " * n), key)).json()["action"] == "NONE"
        refused = (await world.check(request_body(("user", "Hi again")), key)).json()
        assert refused["action"] == "BLOCKED" and "Rate limit" in refused["blocked_reason"]

    run(redis_server, scenario)


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_the_key_is_read_from_x_api_key_or_a_bearer(redis_server, header: str) -> None:
    async def scenario(world: World):
        key, _ = await world.key()
        assert (await world.check(request_body(("user", "Hi")), key, header)).status_code == 200
        wrong = await world.check(request_body(("user", "Hi")), "ss-nope-nope", header)
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        missing = await world.check(request_body(("user", "Hi")), None)
        assert missing.status_code == 401 and "x-api-key" in missing.json()["error"]["message"]

    run(redis_server, scenario)


def key_info(role: str) -> ApiKeyInfo:
    return ApiKeyInfo(id="k1", user_id="owner", tier="standard", role=role, created_at=0.0)


@pytest.mark.parametrize("role", ["gateway", "admin"])
def test_a_gateway_or_admin_key_acts_for_the_named_user_who_is_never_an_admin(role: str) -> None:
    acting = acting_for(key_info(role), "alice@example.org")
    assert (acting.id, acting.user_id, acting.role) == ("k1:alice@example.org", "owner:alice@example.org", "user")
    odd = acting_for(key_info(role), "name with spaces/and slashes")
    assert re.fullmatch(r"owner:h-[0-9a-f]{16}", odd.user_id)


@pytest.mark.parametrize("role", ["user", "reviewer"])
def test_any_other_key_is_its_own_user_whatever_the_body_names(role: str) -> None:
    assert acting_for(key_info(role), "someone-else") == key_info(role)
    assert acting_for(key_info("gateway"), None) == key_info("gateway")
