from __future__ import annotations

import httpx
import openai
import pytest

SERVED_MODEL = "safeserve-smollm2"


def create_key(
    base_url: str,
    admin_key: str,
    tier: str = "standard",
    role: str = "user",
    user_id: str = "alice",
    limits: dict | None = None,
) -> dict:
    response = httpx.post(
        f"{base_url}/admin/keys",
        json={"user_id": user_id, "tier": tier, "role": role, "limits": limits},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(autouse=True)
def _alice_in_good_standing(base_url: str, admin_key: str) -> None:
    """Tests send blocked prompts as alice on purpose; her reputation starts every test whole again, so one
    test's blocks cannot put the next on the strict policy or suspend her."""
    response = httpx.post(
        f"{base_url}/admin/users/alice/reset",
        json={"reason": "test isolation"},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="session")
def user_key(base_url: str, admin_key: str) -> str:
    return create_key(base_url, admin_key)["key"]


@pytest.fixture(scope="session")
def client(base_url: str, user_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=user_key, max_retries=0, timeout=180)


@pytest.fixture(scope="session")
def http(base_url: str, user_key: str) -> httpx.Client:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {user_key}"}, timeout=180) as c:
        yield c
