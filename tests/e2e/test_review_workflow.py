"""The review workflow against the running app and a real redis-server: claims that time out and return,
`hold` mode, and the audit trail of every step."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import CLAIM_TIMEOUT_S
from tests.e2e.conftest import SERVED_MODEL, create_key
from tests.support import wait_until

pytestmark = pytest.mark.e2e
REVIEW_CANARY = "zebra-canary-review"
HOLD_CANARY = "zebra-canary-hold"


def client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=180)


def ask(api: httpx.Client, text: str) -> httpx.Response:
    body = {"model": SERVED_MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 12}
    return api.post("/v1/chat/completions", json=body)


def claim_until(api: httpx.Client, item_id: str, tries: int = 300) -> dict:
    """Claim items until this one comes up: the items of the session's other tests, and their claims that
    timed out (taken over first, oldest first), may be ahead of it."""
    for _ in range(tries):
        response = api.post("/admin/reviews/claim")
        assert response.status_code in (200, 204), response.text
        if response.status_code == 200 and response.json()["id"] == item_id:
            return response.json()
        if response.status_code == 204:
            time.sleep(0.5)
    raise AssertionError(f"{item_id} never came up for claiming")


def test_an_item_is_claimed_times_out_returns_and_is_decided(base_url, admin_key) -> None:
    user = create_key(base_url, admin_key, user_id="reviewed-user")["key"]
    rita = create_key(base_url, admin_key, role="reviewer", user_id="rita")["key"]
    ralph = create_key(base_url, admin_key, role="reviewer", user_id="ralph")["key"]
    with client(base_url, user) as api:
        assert ask(api, f"A short fact about the {REVIEW_CANARY}, please.").status_code == 200
    with client(base_url, rita) as as_rita, client(base_url, ralph) as as_ralph:
        pending = as_rita.get("/admin/reviews", params={"status": "pending", "limit": 500}).json()
        item = next(i for i in pending if i["user_id"] == "reviewed-user")
        claimed = claim_until(as_rita, item["id"])
        assert claimed["status"] == "claimed" and claimed["claimed_by"] == "rita"
        # Rita walks away: after the claim timeout the item is pending again, by itself.
        wait_until(
            lambda: as_rita.get(f"/admin/reviews/{item['id']}").json()["status"] == "pending",
            CLAIM_TIMEOUT_S + 10,
            what="the claim to expire",
        )
        taken_over = claim_until(as_ralph, item["id"])
        assert taken_over["claimed_by"] == "ralph"
        decided = as_ralph.post(f"/admin/reviews/{item['id']}/decision", json={"decision": "approve", "note": "ok"})
        assert decided.status_code == 200 and decided.json()["status"] == "approved"
        trail = as_ralph.get("/admin/audit", params={"target": item["id"]}).json()
    steps = [(entry["action"], entry["actor"]) for entry in reversed(trail)]
    assert steps == [
        ("review.enqueued", "system"),
        ("review.claimed", "rita"),
        ("review.claim_expired", "system"),
        ("review.claimed", "ralph"),
        ("review.approve", "ralph"),
    ]
    assert all(entry["ts"] and entry["before"] and entry["after"] for entry in trail)


def test_hold_mode_withholds_the_answer_until_a_reviewer_approves(base_url, admin_key) -> None:
    key = create_key(base_url, admin_key, user_id="held-user")["key"]
    stranger = create_key(base_url, admin_key, user_id="stranger")["key"]
    with client(base_url, key) as api:
        response = ask(api, f"Tell me about the {HOLD_CANARY} in one sentence.")
        assert response.status_code == 200, response.text
        body = response.json()
        review_id = body["safeserve_review_id"]
        assert review_id and review_id in body["choices"][0]["message"]["content"]
        assert body["choices"][0]["finish_reason"] == "content_filter"
        waiting = api.get(f"/v1/reviews/{review_id}").json()
        assert waiting["status"] == "pending" and waiting["answer"] is None
        with client(base_url, stranger) as other:
            assert other.get(f"/v1/reviews/{review_id}").status_code == 404  # only the same key may read it
        with client(base_url, admin_key) as admin:
            item = admin.get(f"/admin/reviews/{review_id}").json()
            assert item["mode"] == "hold" and item["held_output"] is None  # reviewers see the excerpt
            assert item["output_excerpt"]
            approved = admin.post(f"/admin/reviews/{review_id}/decision", json={"decision": "approve"})
            assert approved.status_code == 200
        released = api.get(f"/v1/reviews/{review_id}").json()
    assert released["status"] == "approved" and released["answer"]
    assert released["answer"].startswith(item["output_excerpt"][:20])


def test_a_held_stream_sends_only_the_notice(base_url, admin_key) -> None:
    key = create_key(base_url, admin_key, user_id="held-streamer")["key"]
    body = {
        "model": SERVED_MODEL,
        "messages": [{"role": "user", "content": f"Tell me about the {HOLD_CANARY}."}],
        "max_tokens": 8,
        "stream": True,
    }
    with client(base_url, key) as api:
        text = api.post("/v1/chat/completions", json=body).text
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and '"finish_reason": "content_filter"' in events[-2]
    assert "held for human review" in events[0]
