"""The review workflow against the running app and a real redis-server: claims that time out and return,
`hold` mode, and the audit trail of every step."""

from __future__ import annotations

import time

import httpx
import pytest

from harness.processes import app_deploy_config, deployment_config, wait_until
from tests.conftest import CLAIM_TIMEOUT_S
from tests.e2e.conftest import SERVED_MODEL, console_client, create_key, page_text

pytestmark = pytest.mark.e2e
REVIEW_CANARY = "zebra-canary-review"
HOLD_CANARY = "zebra-canary-hold"
REPUTATION = deployment_config(app_deploy_config(), "Ingress")["user_config"]["reputation"]


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
    reviewer = create_key(base_url, admin_key, role="reviewer", user_id="holly")["key"]
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
        with client(base_url, reviewer) as as_reviewer:
            item = as_reviewer.get(f"/admin/reviews/{review_id}").json()
            assert item["mode"] == "hold" and item["held_output"]  # the whole answer, not just the excerpt
            with console_client(base_url, reviewer) as console:
                page = console.get(f"/console/items/{review_id}").text
            assert page_text(page, 'data-text="held-answer"') == item["held_output"]  # whole, escaped
            approved = as_reviewer.post(f"/admin/reviews/{review_id}/decision", json={"decision": "approve"})
            assert approved.status_code == 200
        released = api.get(f"/v1/reviews/{review_id}").json()
    assert released["status"] == "approved" and released["answer"] == item["held_output"]


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


def reputation(base_url: str, admin_key: str, user_id: str) -> float:
    with client(base_url, admin_key) as admin:
        return admin.get(f"/admin/users/{user_id}").json()["score"]


def test_reviewer_decisions_move_the_users_reputation_feed_the_report_and_are_audited(base_url, admin_key) -> None:
    reviewer = create_key(base_url, admin_key, role="reviewer", user_id="reva")["key"]
    with client(base_url, reviewer) as as_reva:
        report_before = as_reva.get("/admin/reviews/report", params={"days": 1}).json()
        penalty, rejected = REPUTATION["penalties"]["review"], REPUTATION["penalties"]["review_rejected"]
        for user_id, decision, change, action in (
            ("approved-by-reva", "approve", penalty, "reputation.review_approved"),
            ("refused-by-reva", "reject", -rejected, "reputation.review_rejected"),
        ):
            with client(base_url, create_key(base_url, admin_key, user_id=user_id)["key"]) as api:
                assert ask(api, f"A short fact about the {REVIEW_CANARY}, please.").status_code == 200
            # The review-band request cost the `review` penalty (privacy has no category weight); a clean answer
            # earns clean_request_bonus back.
            charged = reputation(base_url, admin_key, user_id)
            assert charged == pytest.approx(100.0 - penalty, abs=REPUTATION["clean_request_bonus"] + 0.05)
            pending = as_reva.get("/admin/reviews", params={"status": "pending", "limit": 500}).json()
            item = next(i for i in pending if i["user_id"] == user_id)
            assert item["penalized"] is True
            decided = as_reva.post(f"/admin/reviews/{item['id']}/decision", json={"decision": decision, "note": "ok"})
            assert decided.status_code == 200, decided.text
            # An approval gives the penalty back (up to the initial score); a rejection costs `review_rejected`.
            assert reputation(base_url, admin_key, user_id) == pytest.approx(min(100.0, charged + change), abs=0.05)
            trail = as_reva.get("/admin/audit", params={"target": f"user:{user_id}"}).json()
            assert trail[0]["action"] == action and trail[0]["actor"] == "reva"
            assert item["id"] in trail[0]["reason"]
        report = as_reva.get("/admin/reviews/report", params={"days": 1}).json()
    privacy, before = report["by_category"]["privacy"], report_before["by_category"].get("privacy", {})
    assert privacy["approve"] == before.get("approve", 0) + 1 and privacy["reject"] == before.get("reject", 0) + 1
    assert report["decisions"] == report_before["decisions"] + 2
    assert 0 < privacy["approve_rate"] < 1 and "input_patterns" in report["by_layer"]
    with client(base_url, create_key(base_url, admin_key, user_id="curious")["key"]) as user:
        assert user.get("/admin/reviews/report").status_code == 403  # reviewers and admins only


def test_a_tier_with_review_sample_rate_one_sends_each_allowed_answer_to_review(base_url, admin_key) -> None:
    key = create_key(base_url, admin_key, tier="sampled", user_id="sampled-user")["key"]
    with client(base_url, key) as api:
        response = ask(api, "Name one colour of the sky.")
        assert response.status_code == 200 and response.json()["choices"][0]["finish_reason"] != "content_filter"
    with client(base_url, admin_key) as admin:
        items = admin.get("/admin/reviews", params={"status": "pending", "limit": 500}).json()
    sampled = [i for i in items if i["user_id"] == "sampled-user"]
    assert len(sampled) == 1 and sampled[0]["layer"] == "sample" and sampled[0]["mode"] == "async"
    assert sampled[0]["output_excerpt"] and sampled[0]["penalized"] is False  # nothing to give back


def test_a_reviewer_cannot_decide_an_item_of_their_own_request(base_url, admin_key) -> None:
    """Deciding one's own item would let a reviewer release what the gateway withheld from them."""
    own = create_key(base_url, admin_key, role="reviewer", user_id="self-reviewer")["key"]
    other = create_key(base_url, admin_key, role="reviewer", user_id="other-reviewer")["key"]
    with client(base_url, own) as as_self, client(base_url, other) as as_other:
        assert ask(as_self, f"A short fact about the {REVIEW_CANARY}, please.").status_code == 200
        pending = as_self.get("/admin/reviews", params={"status": "pending", "limit": 500}).json()
        item = next(i for i in pending if i["user_id"] == "self-reviewer")
        refused = as_self.post(f"/admin/reviews/{item['id']}/decision", json={"decision": "approve", "note": "mine"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
        assert as_self.get(f"/admin/reviews/{item['id']}").json()["status"] == "pending"
        decided = as_other.post(f"/admin/reviews/{item['id']}/decision", json={"decision": "approve", "note": "ok"})
        assert decided.status_code == 200, decided.text
