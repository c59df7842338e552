"""The streaming leak bound with the default model (SmolLM2 on the transformers backend): a stream is the whole
answer in order; when the Moderator flags a span, the stream ends with content_filter and at most K pieces of
the span (the hold-back window) ever reach the client."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from deployments.generator import POLICY_BANS_TTL_S
from harness.processes import deploy, deployment_config, wait_until
from serve_app.first_stage import REFRESH_S
from tests.conftest import session_app_config
from tests.e2e.conftest import SERVED_MODEL
from tests.support import incident_for, sse_choices

pytestmark = pytest.mark.e2e
PROMPT = "Write a short paragraph about the history of bread."


def ask(base_url: str, key: str, stream: bool) -> httpx.Response:
    body = {
        "model": SERVED_MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 60,
        "stream": stream,
    }
    return httpx.post(
        f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=180
    )


def deploy_moderator_policy(base_url: str, key: str, config: dict, word: str, flags_it: bool) -> None:
    """Deploy `config` and wait until the ingress's copy of the Moderator's first stage has it too: until `word`
    is flagged (or no longer flagged), then two refresh periods more, since a text the copy cannot decide goes to
    the Moderator, which has the policy first (serve_app/first_stage.py)."""

    def flagged() -> bool:
        response = httpx.post(
            f"{base_url}/v1/moderations", json={"input": word}, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        return response.json()["results"][0]["flagged"]

    deploy(config)
    wait_until(lambda: flagged() == flags_it, 10 * REFRESH_S, 0.5, what="the Moderator's policy in the ingress")
    time.sleep(2 * REFRESH_S)


def streamed(response: httpx.Response) -> tuple[list[str], str | None]:
    """The content pieces a client received, one per event, and the stream's finish_reason."""
    pieces, finish = [], None
    for choice in sse_choices(response.text):
        if choice["delta"].get("content"):
            pieces.append(choice["delta"]["content"])
        finish = choice.get("finish_reason") or finish
    return pieces, finish


def test_the_default_model_streams_whole_and_is_cut_within_the_window(base_url, user_key, redis_server) -> None:
    answer = ask(base_url, user_key, stream=False).json()["choices"][0]["message"]["content"]
    pieces, finish = streamed(ask(base_url, user_key, stream=True))
    assert "".join(pieces).strip() == answer and finish in ("stop", "length")

    words = re.findall(r"[A-Za-z]{4,}", answer)
    assert len(words) >= 12, answer
    flagged = words[len(words) // 2]  # a word from the middle of what the model says
    config = session_app_config()
    ingress = deployment_config(config, "Ingress")["user_config"]
    holdback = ingress["stream_moderation"]["holdback_tokens"]
    moderator = deployment_config(config, "Moderator")["user_config"]
    # A pattern, not a plain phrase: a plain phrase would be banned from decoding and never generated at all.
    moderator["denylist"].append(
        {"name": "test-flagged-word", "category": "violence", "action": "block", "pattern": rf"\b{flagged}s?\b"}
    )
    deploy_moderator_policy(base_url, user_key, config, flagged, flags_it=True)
    try:
        response = ask(base_url, user_key, stream=True)
    finally:
        deploy_moderator_policy(base_url, user_key, session_app_config(), flagged, flags_it=False)
    cut, finish = streamed(response)
    assert finish == "content_filter"
    incident = incident_for(redis_server, response.headers["x-request-id"])
    assert incident["action"] == "block" and incident["layer"] == "moderator"
    assert "pattern:test-flagged-word" in incident["reasons"]
    delivered = "".join(cut)
    assert flagged not in delivered and answer.startswith(delivered.strip())
    # The span starts at the flagged word; nothing from there on reached the client (0 <= K pieces), and what
    # preceded it was delivered but for the pieces still in the window when the Moderator caught the word.
    span_start = answer.index(flagged)
    assert len(delivered.strip()) <= span_start
    before_span = sum(1 for end in _ends(pieces) if end <= span_start)
    assert len(cut) >= before_span - holdback - ingress["stream_moderation"]["check_every_tokens"]


def _ends(pieces: list[str]) -> list[int]:
    """Where each piece of the full stream ends in the answer (leading whitespace of the stream trimmed)."""
    ends, total = [], -(len("".join(pieces)) - len("".join(pieces).lstrip()))
    for piece in pieces:
        total += len(piece)
        ends.append(total)
    return ends


def test_a_plain_phrase_of_the_output_policy_is_never_generated(base_url, user_key) -> None:
    """The Generator bans the Moderator's plain-phrase block rules from decoding (the builder binds it to the
    Moderator, which it asks every few seconds): the model says something else instead, and nothing needs
    cutting."""
    answer = ask(base_url, user_key, stream=False).json()["choices"][0]["message"]["content"]
    word = re.findall(r"[A-Za-z]{4,}", answer)[3]
    config = session_app_config()
    deployment_config(config, "Moderator")["user_config"]["denylist"].append(
        {"name": "test-banned-word", "category": "violence", "action": "block", "pattern": rf"\b{word}\b"}
    )
    deploy_moderator_policy(base_url, user_key, config, word, flags_it=True)
    time.sleep(POLICY_BANS_TTL_S)  # the Generator refreshes the policy's phrases this often
    try:
        choice = ask(base_url, user_key, stream=False).json()["choices"][0]
        pieces, finish = streamed(ask(base_url, user_key, stream=True))
    finally:
        deploy_moderator_policy(base_url, user_key, session_app_config(), word, flags_it=False)
        time.sleep(POLICY_BANS_TTL_S)
    said = re.compile(rf"\b{word}\b", re.IGNORECASE)
    assert said.search(answer)
    assert choice["finish_reason"] in ("stop", "length") and not said.search(choice["message"]["content"]), choice
    assert finish in ("stop", "length") and not said.search("".join(pieces))
