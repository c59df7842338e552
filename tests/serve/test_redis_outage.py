"""Redis down: authentication and rate limiting fail closed with a clear 503, readiness says why, and all recover
by themselves."""

from __future__ import annotations

import httpx

from harness.processes import RedisServer, wait_until


def test_redis_outage_fails_closed_and_recovers(base_url: str, admin_key: str, redis_server: RedisServer) -> None:
    created = httpx.post(
        f"{base_url}/admin/keys",
        json={"user_id": "outage", "tier": "free"},
        headers={"Authorization": f"Bearer {admin_key}"},
    ).json()
    user = {"Authorization": f"Bearer {created['key']}"}
    assert httpx.get(f"{base_url}/v1/models", headers=user).status_code == 200

    redis_server.stop()
    try:
        refused = httpx.get(f"{base_url}/v1/models", headers=user, timeout=30)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "auth_unavailable"
        ready = httpx.get(f"{base_url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"
        listed = httpx.get(f"{base_url}/admin/keys", headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
        assert listed.status_code == 503 and listed.json()["error"]["code"] == "storage_unavailable"
        # The admin key needs no Redis to authenticate; the rate limiter does, and fails closed by default.
        limited = httpx.post(
            f"{base_url}/v1/chat/completions",
            json={"model": "safeserve-smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        )
        assert limited.status_code == 503 and limited.json()["error"]["code"] == "rate_limiter_unavailable"
    finally:
        redis_server.start()

    wait_until(lambda: httpx.get(f"{base_url}/v1/models", headers=user).status_code == 200, 30, what="recovery")
    # Each ingress replica and the review queue reconnect on their own; readiness follows within the same bound.
    wait_until(lambda: httpx.get(f"{base_url}/readyz", timeout=30).status_code == 200, 30, what="readiness")
