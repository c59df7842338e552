"""Policy is data: a changed user_config, deployed as `serve deploy` does, applies live without restarts."""

from __future__ import annotations

import httpx
import pytest
import ray

from tests.conftest import session_app_config
from tests.support import deploy, deployment_config

MODEL = "safeserve-smollm2"


def replica_actor_ids() -> set[str]:
    """Serve's replicas are named actors; a restarted replica comes back under a new name."""
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "safeserve#" in a["name"]}


@pytest.fixture
def user_headers(base_url, admin_key) -> dict[str, str]:
    key = httpx.post(
        f"{base_url}/admin/keys",
        json={"user_id": "ops", "tier": "standard"},
        headers={"Authorization": f"Bearer {admin_key}"},
    ).json()["key"]
    return {"Authorization": f"Bearer {key}"}


def test_policy_change_applies_live_without_restarting_replicas(base_url, user_headers) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Is a pineapple-live-update a fruit?"}],
        "max_tokens": 4,
    }
    moderation = {"input": "You are a worthless idiot and everyone hates you."}
    assert (
        httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user_headers, timeout=120).status_code == 200
    )
    assert httpx.post(f"{base_url}/v1/moderations", json=moderation, headers=user_headers).json()["results"][0][
        "flagged"
    ]
    before = replica_actor_ids()
    assert len(before) >= 5

    changed = session_app_config()
    deployment_config(changed, "Ingress")["user_config"]["input_patterns"].append(
        {"name": "live", "category": "fraud", "pattern": "pineapple-live-update"}
    )
    # Raise every Moderator band out of reach: nothing is flagged any more.
    deployment_config(changed, "Moderator")["user_config"]["thresholds"] = {"default": {"review": 1.0, "block": 1.0}}
    deployment_config(changed, "Moderator")["user_config"]["denylist"] = []
    try:
        deploy(changed)
        refused = httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user_headers)
        assert refused.status_code == 400
        assert refused.json()["error"]["category"] == "fraud"
        assert not httpx.post(f"{base_url}/v1/moderations", json=moderation, headers=user_headers).json()["results"][0][
            "flagged"
        ]
        assert replica_actor_ids() == before
    finally:
        deploy(session_app_config())
    assert (
        httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user_headers, timeout=120).status_code == 200
    )


def test_invalid_policy_is_refused_with_a_message_naming_the_field(base_url) -> None:
    from serve_app.serve_config import ConfigError, app_config

    broken = session_app_config()
    deployment_config(broken, "IntentClassifier")["user_config"]["thresholds"] = {
        "default": {"review": 0.9, "block": 0.5}
    }
    with pytest.raises(
        ConfigError, match=r"(?s)intent_classifier\.thresholds\.default.*review threshold 0.9 is above block"
    ):
        app_config(broken)
    assert ray.is_initialized()
