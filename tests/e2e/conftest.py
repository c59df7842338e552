from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def console_client(base_url: str, key: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the console with `key` (the sign-in form's CSRF token and cookie)."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=60) as browser_like:
        token = browser_like.get("/console/login").text.split('name="csrf" value="')[1].split('"')[0]
        signed_in = browser_like.post("/console/login", data={"api_key": key, "csrf": token})
        assert signed_in.headers["location"] == "/console", signed_in.headers["location"]
        yield browser_like


def page_text(page: str, selector_attribute: str) -> str:
    """The text of the element carrying `selector_attribute` (e.g. `data-text="held-answer"`), marks removed
    and entities decoded: what a reader sees."""
    inner = re.search(rf"<(\w+)[^>]*{re.escape(selector_attribute)}[^>]*>(.*?)</\1>", page, re.S)
    assert inner, f"no element with {selector_attribute}"
    return html.unescape(re.sub(r"</?mark>", "", inner.group(2)))


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
