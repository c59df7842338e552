"""The reviewer console, in a real browser (Playwright driving Debian's chromium headless) and over HTTP:
sign in, see a pending item with its flagged span highlighted and its untrusted text escaped, approve it with
a note, find it gone from the queue and present in the audit trail. A screenshot is saved as a test artefact."""

from __future__ import annotations

import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis.asyncio as aioredis

from deployments.review_store import ReviewRequest, ReviewStore
from harness.processes import ROOT
from tests.e2e.conftest import SERVED_MODEL, console_client, create_key, page_text

pytestmark = pytest.mark.e2e
ARTEFACTS = ROOT / "test-artifacts"
REVIEW_CANARY = "zebra-canary-review"
UNTRUSTED = '<img src=x onerror="document.title=1">'


def queued_item(base_url: str, admin_key: str, user_id: str) -> str:
    """A review-band request from a fresh user; the id of its review item."""
    key = create_key(base_url, admin_key, user_id=user_id)["key"]
    body = {
        "model": SERVED_MODEL,
        "messages": [{"role": "user", "content": f"About the {REVIEW_CANARY}: {UNTRUSTED} what is it?"}],
        "max_tokens": 8,
    }
    assert (
        httpx.post(
            f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=180
        ).status_code
        == 200
    )
    items = httpx.get(
        f"{base_url}/admin/reviews",
        params={"status": "pending", "limit": 500},
        headers={"Authorization": f"Bearer {admin_key}"},
    ).json()
    return next(item["id"] for item in items if item["user_id"] == user_id)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is missing: `scripts/system_deps.sh --test` installs it (make test runs it)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield instance
        instance.close()


def test_a_reviewer_signs_in_approves_an_item_and_finds_it_in_the_audit_trail(base_url, admin_key, browser) -> None:
    item_id = queued_item(base_url, admin_key, user_id="console-user")
    reviewer = create_key(base_url, admin_key, role="reviewer", user_id="rosa")["key"]
    page = browser.new_page()
    page.goto(f"{base_url}/console")
    assert page.url.endswith("/console/login")
    page.fill("#api_key", reviewer)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/console")
    assert "rosa" in page.inner_text("header")
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "console_queue.png"), full_page=True)

    page.click(f"a[href='/console/items/{item_id}']")
    page.wait_for_url(f"**/console/items/{item_id}")
    request_text = page.locator("pre.text").first
    assert request_text.locator("mark").first.inner_text() == REVIEW_CANARY  # the flagged span
    assert UNTRUSTED in request_text.inner_text()  # shown as text, not run
    assert page.locator("pre.text img").count() == 0 and page.title() != "1"

    page.screenshot(path=str(ARTEFACTS / "console_item.png"), full_page=True)
    page.fill("#note", "harmless curiosity")
    page.click("button[value=approve]")
    page.wait_for_url("**/console?message=*")
    assert f"Item {item_id} approved" in page.inner_text(".notice")
    assert page.locator(f"a[href='/console/items/{item_id}']").count() == 0  # gone from the open queue

    page.goto(f"{base_url}/console/audit?target={item_id}")
    rows = page.locator("table.audit tbody tr")
    actions = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(rows.count())]
    assert actions[0] == "review.approve" and "review.enqueued" in actions
    assert "harmless curiosity" in rows.nth(0).inner_text() and "rosa" in rows.nth(0).inner_text()
    page.screenshot(path=str(ARTEFACTS / "console_audit.png"), full_page=True)
    assert (ARTEFACTS / "console_audit.png").stat().st_size > 10_000
    page.close()


def test_the_session_cookie_is_httponly_strict_and_forms_need_the_csrf_token(base_url, admin_key) -> None:
    item_id = queued_item(base_url, admin_key, user_id="csrf-user")
    reviewer = create_key(base_url, admin_key, role="reviewer", user_id="ravi")["key"]
    with httpx.Client(base_url=base_url, follow_redirects=False) as browser_like:
        form = browser_like.get("/console/login")
        token = form.text.split('name="csrf" value="')[1].split('"')[0]
        assert (
            browser_like.post("/console/login", data={"api_key": reviewer, "csrf": "forged"})
            .headers["location"]
            .startswith("/console/login?error=")
        )
        signed_in = browser_like.post("/console/login", data={"api_key": reviewer, "csrf": token})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console"
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and reviewer.lower() not in cookie
        # A decision without the session's CSRF token changes nothing.
        forged = browser_like.post(f"/console/items/{item_id}/decision", data={"decision": "reject", "csrf": "x"})
        assert forged.status_code == 303 and forged.headers["location"] == "/console/login"
        item = httpx.get(f"{base_url}/admin/reviews/{item_id}", headers={"Authorization": f"Bearer {admin_key}"})
        assert item.json()["status"] == "pending"
        page = browser_like.get("/console")
        assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("action", ["rotate", "revoke"])
def test_rotating_or_revoking_the_key_ends_its_console_sessions_at_once(base_url, admin_key, action) -> None:
    """The cookie held only the key id: a session outlived the key's rotation (an old secret's session went on)."""
    created = create_key(base_url, admin_key, role="reviewer", user_id=f"session-{action}")
    with console_client(base_url, created["key"]) as signed_in:
        assert signed_in.get("/console").status_code == 200
        admin = {"Authorization": f"Bearer {admin_key}"}
        keys = f"{base_url}/admin/keys/{created['id']}"
        if action == "rotate":
            changed = httpx.post(f"{keys}/rotate", headers=admin, timeout=30)
        else:
            changed = httpx.delete(keys, headers=admin, timeout=30)
        assert changed.status_code == 200, changed.text
        after = signed_in.get("/console")
        assert after.status_code == 303 and after.headers["location"] == "/console/login"


def test_a_user_key_cannot_sign_in(base_url, admin_key) -> None:
    user = create_key(base_url, admin_key, user_id="not-a-reviewer")["key"]
    with httpx.Client(base_url=base_url, follow_redirects=False) as browser_like:
        token = browser_like.get("/console/login").text.split('name="csrf" value="')[1].split('"')[0]
        refused = browser_like.post("/console/login", data={"api_key": user, "csrf": token})
        assert "error=" in refused.headers["location"] and "set-cookie" not in refused.headers


def queued_hours_ago(redis_url: str, hours: float, output: str | None = None) -> str:
    """An item put straight into the app's queue as if queued `hours` ago (its SLA long missed): the console's
    age filter and the lead's figures need an old item, and a test cannot wait hours."""

    async def put() -> str:
        client = aioredis.from_url(redis_url, decode_responses=True)
        try:
            store = ReviewStore(client, sla_seconds=3600, excerpt_chars=200)
            review = ReviewRequest(
                request_id="old",
                user_id="old-user",
                layer="moderator",
                category="violence",
                score=0.6,
                request_excerpt="an old request",
                output_excerpt=output,
            )
            item = store.new_item(review)
            created = time.time() - hours * 3600
            await store.put(item.model_copy(update={"created_at": created, "sla_deadline": created + 3600}))
            return item.id
        finally:
            await client.aclose()

    # Playwright's sync API keeps an event loop running in this thread: the store's client runs in another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, put()).result()


def test_the_queue_filters_by_category_and_age_and_shows_the_lead_numbers(base_url, admin_key, redis_server) -> None:
    fresh = queued_item(base_url, admin_key, user_id="filter-user")  # privacy, just now
    old = queued_hours_ago(redis_server.url, hours=2)  # violence
    reviewer = create_key(base_url, admin_key, role="reviewer", user_id="lena")["key"]
    headers = {"Authorization": f"Bearer {reviewer}"}
    with console_client(base_url, reviewer) as console:
        privacy = console.get("/console", params={"category": "privacy"}).text
        assert f"/console/items/{fresh}" in privacy and f"/console/items/{old}" not in privacy
        violence = console.get("/console", params={"category": "violence"}).text
        assert f"/console/items/{old}" in violence and f"/console/items/{fresh}" not in violence
        aged = console.get("/console", params={"min_age_minutes": 60}).text
        assert f"/console/items/{old}" in aged and f"/console/items/{fresh}" not in aged

        # Nothing in the old item's text is a deny pattern or a listed word: the page says so plainly.
        assert 'data-note="no-spans"' in console.get(f"/console/items/{old}").text
        assert 'data-note="no-spans"' not in console.get(f"/console/items/{fresh}").text  # its canary is marked

        stats = httpx.get(f"{base_url}/admin/reviews/stats", headers=headers).json()
        assert stats["oldest_pending_age_s"] >= 2 * 3600 and stats["sla_misses_open"] >= 1
        assert stats["queue_depth"] >= 2
        page = console.get("/console").text
        assert int(page_text(page, 'data-stat="queue_depth"')) == stats["queue_depth"]
        assert float(page_text(page, 'data-stat="oldest_pending_minutes"').split()[0]) >= 120
        assert int(page_text(page, 'data-stat="sla_misses_open"')) == stats["sla_misses_open"]
        shown_decisions = int(page_text(page, 'data-stat="decisions_last_hour"'))
        assert shown_decisions == stats["decisions_last_hour"]

        decided = httpx.post(f"{base_url}/admin/reviews/{old}/decision", json={"decision": "reject"}, headers=headers)
        assert decided.status_code == 200, decided.text
        after = httpx.get(f"{base_url}/admin/reviews/stats", headers=headers).json()
        assert after["decisions_last_hour"] == stats["decisions_last_hour"] + 1
        assert after["queue_depth"] == stats["queue_depth"] - 1
        assert after["sla_misses_open"] == stats["sla_misses_open"] - 1
        page = console.get("/console").text
        assert int(page_text(page, 'data-stat="decisions_last_hour"')) == after["decisions_last_hour"]


def test_an_answer_under_review_is_marked_where_the_output_policy_matched(base_url, admin_key, redis_server) -> None:
    """The answer's marks come from the Moderator's own rules: its deny-list (the session's unsafe-passage rule,
    which no ingress pattern knows), personal data and listed words."""
    answer = "Sure: zebra unsafe passage. Mail jane@example.org for more."
    item_id = queued_hours_ago(redis_server.url, hours=0, output=answer)
    reviewer = create_key(base_url, admin_key, role="reviewer", user_id="marta")["key"]
    with console_client(base_url, reviewer) as console:
        page = console.get(f"/console/items/{item_id}").text
    assert "<mark>zebra unsafe passage</mark>" in page
    assert "<mark>jane@example.org</mark>" in page
    assert 'data-note="no-spans"' not in page
