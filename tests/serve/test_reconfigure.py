"""Policy is data: a changed user_config, deployed as `serve deploy` does, applies live without restarts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import ray
from ray import serve

from harness.processes import deploy, deployment_config, wait_until
from serve_app.first_stage import REFRESH_S
from tests.conftest import session_app_config

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

    def flagged() -> bool:
        moderation = {"input": "You are a worthless idiot and everyone hates you."}
        response = httpx.post(f"{base_url}/v1/moderations", json=moderation, headers=user_headers)
        return response.json()["results"][0]["flagged"]

    assert (
        httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user_headers, timeout=120).status_code == 200
    )
    assert flagged()
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
        # The ingress's copy of the Moderator's first stage follows within its refresh period.
        wait_until(lambda: not flagged(), 10 * REFRESH_S, 0.5, what="the new Moderator policy in the ingress")
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


def test_kill_switches_apply_live(base_url, user_headers) -> None:
    """`stop_generation` refuses chat with a clear 503 while the rest of the API stays up; `safe_mode` puts every
    request on the strict policy. Both are Ingress user_config, applied by a `serve deploy` without restarts."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Name a large ocean."}], "max_tokens": 2}

    def moderation(text: str) -> dict:
        response = httpx.post(f"{base_url}/v1/moderations", json={"input": text}, headers=user_headers, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["results"][0]

    # The default policy allows it; its harassment score (about 0.5) is inside the strict policy's review band.
    borderline = "What a silly question."
    assert moderation(borderline)["safeserve_action"] == "allow"
    before = replica_actor_ids()
    switched = session_app_config()
    deployment_config(switched, "Ingress")["user_config"].update(stop_generation=True, safe_mode=True)
    try:
        deploy(switched)
        refused = httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user_headers, timeout=60)
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error["code"] == "generation_stopped" and "paused by the operators" in error["message"]
        assert moderation(borderline)["safeserve_action"] == "review"  # safe_mode: the strict policy
        assert httpx.get(f"{base_url}/v1/models", headers=user_headers).status_code == 200
        assert replica_actor_ids() == before
    finally:
        deploy(session_app_config())
    assert (
        httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user_headers, timeout=120).status_code == 200
    )
    assert moderation(borderline)["safeserve_action"] == "allow"


def test_an_intent_policy_change_reaches_the_ingress_first_stage(base_url, user_headers) -> None:
    """The ingress decides most prompts on its copy of the IntentClassifier's first stage (serve_app/first_stage.py);
    a `serve deploy` of the classifier's policy must reach that copy within a few refreshes."""

    body = {"model": MODEL, "messages": [{"role": "user", "content": "Name a large ocean please."}], "max_tokens": 2}

    def status() -> int:
        return httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user_headers, timeout=60).status_code

    assert status() == 200
    changed = session_app_config()
    deployment_config(changed, "IntentClassifier")["user_config"]["thresholds"] = {
        "default": {"review": 0.0, "block": 0.0}  # every scored prompt blocks
    }
    try:
        deploy(changed)
        wait_until(lambda: status() == 400, 10 * REFRESH_S, 0.5, what="the new intent policy in the ingress")
    finally:
        deploy(session_app_config())
    wait_until(lambda: status() == 200, 10 * REFRESH_S, 0.5, what="the shipped intent policy back in the ingress")


def test_an_invalid_policy_deployed_live_is_refused_and_the_running_one_keeps_serving(base_url, user_headers) -> None:
    """Serve would stop every replica whose reconfigure raises and restart it on the same bad config; the
    replicas log the refusal instead and keep their policy (deployments/live_config.py)."""
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs" / "serve"

    def refusals() -> int:
        return sum(path.read_text().count("the deployed user_config was refused") for path in logs.glob("*.log"))

    moderation = {"input": "You are a worthless idiot and everyone hates you."}
    before, refused_before = replica_actor_ids(), refusals()
    broken = session_app_config()
    deployment_config(broken, "Moderator")["user_config"]["thresholds"] = {"default": {"review": 0.9, "block": 0.5}}
    try:
        deploy(broken)
        wait_until(lambda: refusals() > refused_before, 60, 0.5, what="the Moderator's replicas to refuse the config")
        answer = httpx.post(f"{base_url}/v1/moderations", json=moderation, headers=user_headers, timeout=60)
        assert answer.status_code == 200 and answer.json()["results"][0]["flagged"]  # the running policy decides
        assert replica_actor_ids() == before
        assert serve.status().applications["safeserve"].status == "RUNNING"
    finally:
        deploy(session_app_config())
