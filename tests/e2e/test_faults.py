"""Faults on real processes: the gateway guarding a real second server (harness/scripted_upstream.py) that is down,
slow or sends malformed SSE, a client that leaves mid-stream, and a Moderator replica killed under load. Every
request ends in its time with an answer, a clean OpenAI-shaped error or a cleanly ended stream: never a 500,
never text the Moderator would block."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import ray

from harness.processes import deploy, deployment_config, free_port, wait_until
from harness.scripted_upstream import CLEAN, FAULTS, REVIEW_PHRASE, UNSAFE, ScriptedUpstream
from serve_app.first_stage import REFRESH_S
from tests.conftest import session_app_config
from tests.e2e.conftest import SERVED_MODEL, create_key
from tests.support import incident_for

pytestmark = pytest.mark.e2e
UPSTREAM_TIMEOUT_S = 2.0
MODERATE_S = deployment_config(session_app_config(), "Ingress")["user_config"]["timeouts"]["moderate_s"]
# An async-review category: the passage is released, and a human reviews it afterwards.
REVIEW_PASSAGE_RULE = {
    "name": "test-review-passage",
    "category": "harassment",
    "action": "review",
    "pattern": REVIEW_PHRASE,
}


def faults_config(url: str) -> dict:
    config = session_app_config()
    deployment_config(config, "Generator")["user_config"].update(
        backend="openai_upstream",
        upstream={"url": url, "model": "scripted-upstream", "timeout_s": UPSTREAM_TIMEOUT_S, "max_retries": 1},
    )
    deployment_config(config, "Moderator")["user_config"]["denylist"].append(REVIEW_PASSAGE_RULE)
    return config


@pytest.fixture(scope="module")
def upstream(base_url):
    """The session app's Generator switched to the scripted upstream for this module, then switched back."""
    server = ScriptedUpstream(delay_s=0.002, stall_s=3 * UPSTREAM_TIMEOUT_S).start()
    deploy(faults_config(server.url))
    time.sleep(3 * REFRESH_S)  # the review-passage rule reaches the ingress's copy of the Moderator's first stage
    yield server
    deploy(session_app_config())
    time.sleep(3 * REFRESH_S)
    server.stop()


@pytest.fixture(scope="module")
def key(base_url, admin_key) -> str:
    """A user of its own: blocked answers cost reputation, which other modules' keys must not lose."""
    return create_key(base_url, admin_key, user_id="faults")["key"]


def chat(base_url: str, key: str, content: str, stream: bool, timeout_s: float = 60) -> httpx.Response:
    body = {"model": SERVED_MODEL, "messages": [{"role": "user", "content": content}], "stream": stream}
    return httpx.post(
        f"{base_url}/v1/chat/completions",
        json={**body, "max_tokens": 64},
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout_s,
    )


def stream_events(response: httpx.Response) -> tuple[str, str | None, dict | None]:
    """A stream as a client reads it: the content, the finish reason, and the error event if one came. Every
    event is JSON and the stream ends with [DONE] (a client's parser would fail otherwise)."""
    assert response.status_code == 200, response.text
    payloads = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert payloads and payloads[-1] == "[DONE]", response.text[-300:]
    content, finish, error = "", None, None
    for payload in payloads[:-1]:
        event = json.loads(payload)
        if "error" in event:
            error = event["error"]
            continue
        choice = event["choices"][0]
        content += choice["delta"].get("content") or ""
        finish = choice.get("finish_reason") or finish
    return content, finish, error


def assert_clean_error(error: dict | None, code: str) -> None:
    assert error is not None and error["type"] == "server_error" and error["code"] == code, error
    assert error["message"] and error["request_id"]


# What the client gets when the upstream's stream breaks as FAULTS says: the whole answer, or an error event after
# what was checked before the break. Nothing after the break, and no unsafe text, ever reaches the client.
EXPECTED = {
    "noise": "whole",
    "garbage": "error",
    "cut": "error",
    "unknown_event": "error",
    "no_done": "whole",
    "unsafe_then_garbage": "error",
}


@pytest.mark.parametrize("topic", list(FAULTS))
def test_a_malformed_upstream_stream_ends_cleanly_and_releases_nothing_unchecked(
    base_url, key, upstream, topic
) -> None:
    fault = FAULTS[topic]
    response = chat(base_url, key, f"Tell me about the {topic}.", stream=True)
    content, finish, error = stream_events(response)
    unsafe = fault == "unsafe_then_garbage"
    script = " ".join(UNSAFE if unsafe else CLEAN)
    assert script.startswith(content) and "zebra" not in content, content
    if EXPECTED[fault] == "whole":
        assert (content, finish, error) == (script, "stop", None)
    else:
        assert_clean_error(error, "generator_unavailable")
        before_the_break = " ".join(CLEAN[: 16 if unsafe else 4])
        assert finish is None and before_the_break.startswith(content)


def test_a_whole_answer_cut_in_half_is_a_clean_503(base_url, key, upstream) -> None:
    response = chat(base_url, key, "Tell me about the otter.", stream=False)
    assert response.status_code == 503, response.text
    assert_clean_error(response.json()["error"], "generator_unavailable")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_slow_upstream_fails_cleanly_within_its_timeout(base_url, key, upstream, stream) -> None:
    """The upstream stalls for 3 x timeout_s: before answering (whole), or after its first chunk (streamed)."""
    started = time.monotonic()
    response = chat(base_url, key, "Describe a glacier.", stream=stream)
    elapsed = time.monotonic() - started
    assert UPSTREAM_TIMEOUT_S <= elapsed < UPSTREAM_TIMEOUT_S + 5, elapsed
    if stream:
        content, finish, error = stream_events(response)
        assert content == "" and finish is None  # the first chunk waits behind the hold-back window
        assert_clean_error(error, "generator_unavailable")
    else:
        assert response.status_code == 503, response.text
        assert_clean_error(response.json()["error"], "generator_unavailable")


def test_an_upstream_that_is_down_is_a_clean_error(base_url, key, upstream) -> None:
    deploy(faults_config(f"http://127.0.0.1:{free_port()}/v1"))  # nothing listens there
    try:
        whole = chat(base_url, key, "Tell me about a quiet afternoon in the park.", stream=False)
        streamed = chat(base_url, key, "Tell me about a quiet afternoon in the park.", stream=True)
    finally:
        deploy(faults_config(upstream.url))
    assert whole.status_code == 503, whole.text
    assert_clean_error(whole.json()["error"], "generator_unavailable")
    content, finish, error = stream_events(streamed)
    assert content == "" and finish is None
    assert_clean_error(error, "generator_unavailable")


def test_a_client_that_leaves_after_reviewed_text_leaves_an_incident_and_a_review_item(
    base_url, admin_key, upstream, redis_server
) -> None:
    """The Moderator sends the passage to review (async: released); the client reads it and disconnects while the
    answer goes on (1,000 more words). The review was lost: only the end of the stream recorded a decision."""
    user = "left-mid-stream"
    key = create_key(base_url, admin_key, user_id=user)["key"]
    upstream.delay_s, left = 0.05, upstream.streams_left
    body = {"model": SERVED_MODEL, "messages": [{"role": "user", "content": "Tell me about the pier."}]}
    received = ""
    try:
        with httpx.stream(
            "POST",
            f"{base_url}/v1/chat/completions",
            json={**body, "stream": True, "max_tokens": 2000},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ) as response:
            request_id = response.headers["x-request-id"]
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    received += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                if REVIEW_PHRASE in received:
                    break
    finally:
        upstream.delay_s = 0.002
    assert REVIEW_PHRASE in received
    # The gateway closes the upstream's stream when its client leaves: the answer is not generated to its end.
    wait_until(lambda: upstream.streams_left > left, 15, what="the upstream stream to be closed")

    def recorded() -> dict | None:
        try:
            return incident_for(redis_server, request_id)
        except StopIteration:
            return None

    incident = wait_until(recorded, 15, what="the incident of the stream whose client left")
    assert (incident["action"], incident["layer"], incident["category"]) == ("review", "moderator", "harassment")
    items = httpx.get(
        f"{base_url}/admin/reviews",
        params={"status": "pending", "limit": 500},
        headers={"Authorization": f"Bearer {admin_key}"},
    ).json()
    queued = [item for item in items if item["user_id"] == user]
    assert [(item["request_id"], item["category"], item["mode"]) for item in queued] == [
        (request_id, "harassment", "async")
    ]


def moderator_replicas() -> set[str]:
    return {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith("SERVE_REPLICA::safeserve#Moderator#")
    }


@pytest.fixture
def every_text_to_the_moderator(upstream):
    """Every text in the cascade's band, so that the ingress's first stage decides none and each goes to the
    Moderator (serve_app/first_stage.py); the ingress's copy follows within a refresh period or two."""
    config = faults_config(upstream.url)
    deployment_config(config, "Moderator")["user_config"]["toxicity"]["band"] = [0.0, 1.0]
    deploy(config)
    time.sleep(3 * REFRESH_S)
    yield
    deploy(faults_config(upstream.url))
    time.sleep(3 * REFRESH_S)


@pytest.mark.usefixtures("every_text_to_the_moderator")
def test_a_moderator_replica_killed_under_load_fails_closed_and_is_replaced(base_url, key, upstream) -> None:
    """16 requests in flight (streamed and whole, half of them with the unsafe passage) when every Moderator
    replica is killed: each ends in its time with an answer, a content filter, a 503 or an error event, never
    with unsafe text; once Serve has started a new replica, the gateway answers again, with no restart."""
    requests = [(topic, stream) for topic in ("park", "seaside") for stream in (False, True) for _ in range(4)]
    upstream.delay_s = 0.05  # about 2 s a stream: the kill lands while they are generated
    before = len(upstream.received)
    killed = moderator_replicas()
    assert killed

    def send(topic: str, stream: bool) -> tuple[str, float]:
        started = time.monotonic()
        response = chat(base_url, key, f"Tell me a story about the {topic}.", stream=stream)
        elapsed = time.monotonic() - started
        assert "zebra" not in response.text
        if not stream:
            if response.status_code == 503:
                assert_clean_error(response.json()["error"], "moderator_unavailable")
                return "503", elapsed
            assert response.status_code == 200, response.text
            return response.json()["choices"][0]["finish_reason"], elapsed
        content, finish, error = stream_events(response)
        if error is not None:
            assert_clean_error(error, "moderator_unavailable")
            return "error event", elapsed
        return finish, elapsed

    try:
        with ThreadPoolExecutor(len(requests)) as pool:
            futures = [pool.submit(send, topic, stream) for topic, stream in requests]
            wait_until(lambda: len(upstream.received) - before >= len(requests) // 2, 30, what="requests in flight")
            for name in killed:
                ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
            outcomes = [future.result(timeout=60) for future in futures]
    finally:
        upstream.delay_s = 0.002
    counts = {outcome: sum(1 for o, _ in outcomes if o == outcome) for outcome, _ in outcomes}
    slowest = max(elapsed for _, elapsed in outcomes)
    print(f"killed {len(killed)} Moderator replica(s), {len(requests)} requests: {counts}, slowest {slowest:.1f} s")
    assert len(upstream.received) - before == len(requests)  # each generated once: none replayed
    assert set(counts) <= {"stop", "content_filter", "503", "error event"}, counts
    assert counts.get("503", 0) + counts.get("error event", 0) > 0, counts  # the kill did land on requests
    assert slowest < MODERATE_S + 15

    def answers() -> bool:
        return chat(base_url, key, "Tell me about a quiet afternoon in the park.", stream=False).status_code == 200

    wait_until(answers, 180, interval_s=2, what="the gateway to answer again")
    assert moderator_replicas() and not moderator_replicas() & killed
    with ThreadPoolExecutor(8) as pool:
        after = list(pool.map(lambda i: chat(base_url, key, "Tell me about the park.", stream=bool(i % 2)), range(8)))
    assert all(r.status_code == 200 for r in after)
    assert [stream_events(r)[:2] for r in after[1::2]] == [(" ".join(CLEAN), "stop")] * 4
    assert all(r.json()["choices"][0]["message"]["content"] == " ".join(CLEAN) for r in after[0::2])
