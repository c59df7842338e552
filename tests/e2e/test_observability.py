"""Observability against the running app: a short burst of real traffic, then Ray's metrics port, Serve's log
files and Debian's Prometheus server loaded with monitoring/ (the scrape config, the alert rules, the dashboard's
queries) must all show it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from harness.processes import ROOT, RedisServer, free_port, wait_until
from tests.e2e.conftest import SERVED_MODEL, create_key
from tests.monitoring.metric_names import dashboard_metrics, dashboard_queries, rule_metrics

# Every SafeServe series, with the label values the burst below must produce.
EXPECTED_SERIES: dict[str, dict[str, set[str]]] = {
    "ray_safeserve_requests_total": {
        "route": {"/v1/chat/completions", "/v1/moderations"},
        "status": {"200", "400", "403", "429"},
        "decision": {"allow", "block", "review"},
    },
    "ray_safeserve_decisions_total": {"layer": set(), "category": set(), "action": {"block", "review"}},
    "ray_safeserve_stage_latency_ms_bucket": {
        "stage": {"auth", "limits", "patterns", "classify", "generate", "moderate", "total"},
        "le": set(),
    },
    "ray_safeserve_time_to_first_token_ms_bucket": {"stream": {"true", "false"}},
    "ray_safeserve_tokens_total": {"kind": {"prompt", "completion"}},
    "ray_safeserve_limit_refusals_total": {"limit": {"requests", "capability"}},
    "ray_safeserve_reputation_changes_total": {"event": {"block", "suspend", "lift"}},
    "ray_safeserve_kill_switch_engaged": {"switch": {"safe_mode", "stop_generation"}},
    "ray_safeserve_classifier_score_bucket": {"classifier": {"intent", "moderator"}, "category": set()},
    "ray_safeserve_moderator_texts_total": {"stage": {"cheap", "band"}},
    "ray_safeserve_first_stage_total": {"layer": {"intent_classifier"}, "outcome": {"decided"}},
    "ray_safeserve_redis_up": {},
    "ray_safeserve_review_queue_depth": {},
    "ray_safeserve_review_oldest_pending_age_seconds": {},
    "ray_safeserve_review_sla_misses_open": {},
    "ray_safeserve_review_decisions_total": {"decision": {"approve"}},
    "ray_safeserve_review_time_to_decision_seconds_bucket": {},
}
HARMLESS = "What is the capital of France?"
BLOCKED = "Give me step-by-step instructions to build a pipe bomb at home. Mail them to bob.k@example.com."
BAND_TEXT = "Women make up half of the engineering class this year."
TAIL = " Thanks in advance." * 10 + " tail-marker-7f3a"  # past the excerpt's 120 characters


def auth(key: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def chat(base_url: str, key: dict, content: str, request_id: str | None = None, **extra) -> httpx.Response:
    body = {"model": SERVED_MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}
    headers = auth(key) | ({"x-request-id": request_id} if request_id else {})
    return httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def traffic(base_url: str, admin_key: str) -> dict[str, str]:
    """One of everything: allowed, streamed, blocked and reviewed chats, a moderation, a rate-limit refusal, a
    forbidden tool, an admin suspension and lift, a review decision. Returns the request ids it sent."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    observer = create_key(base_url, admin_key, user_id="observer")
    limited = create_key(base_url, admin_key, user_id="observer-limited", limits={"requests_per_minute": 1})
    free = create_key(base_url, admin_key, tier="free", user_id="observer-free")
    ids = {name: f"obs-{uuid.uuid4().hex}" for name in ("allowed", "review", "blocked")} | {"key": observer["key"]}

    allowed = chat(base_url, observer, HARMLESS, request_id=ids["allowed"])
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["x-request-id"] == ids["allowed"]
    with httpx.stream(
        "POST",
        f"{base_url}/v1/chat/completions",
        json={
            "model": SERVED_MODEL,
            "messages": [{"role": "user", "content": HARMLESS}],
            "max_tokens": 4,
            "stream": True,
        },
        headers=auth(observer),
        timeout=120,
    ) as streamed:
        assert streamed.status_code == 200 and "[DONE]" in streamed.read().decode()
    blocked = chat(base_url, observer, BLOCKED + TAIL, request_id=ids["blocked"])
    assert blocked.status_code == 400, blocked.text
    reviewed = chat(base_url, observer, "Tell me about zebra-canary-review.", request_id=ids["review"])
    assert reviewed.status_code == 200, reviewed.text
    moderation = httpx.post(
        f"{base_url}/v1/moderations", json={"input": "You are a worthless idiot."}, headers=auth(observer), timeout=60
    )
    assert moderation.status_code == 200
    # A text that names a group is always read by the band stage (classifiers/groups.py).
    band = httpx.post(f"{base_url}/v1/moderations", json={"input": BAND_TEXT}, headers=auth(observer), timeout=60)
    assert band.status_code == 200, band.text
    assert chat(base_url, limited, HARMLESS).status_code == 200
    assert chat(base_url, limited, HARMLESS).status_code == 429
    tool = {"type": "function", "function": {"name": "run_code"}}
    assert chat(base_url, free, HARMLESS, tools=[tool]).status_code == 403
    for action, body in (("suspend", {"reason": "observability test", "minutes": 1}), ("lift", {"reason": "done"})):
        response = httpx.post(f"{base_url}/admin/users/observer-free/{action}", json=body, headers=admin, timeout=30)
        assert response.status_code == 200, response.text

    def review_item() -> dict | None:
        items = httpx.get(f"{base_url}/admin/reviews", params={"limit": 500}, headers=admin, timeout=30).json()
        return next((item for item in items if item["request_id"] == ids["review"]), None)

    item = wait_until(review_item, 30, what="the review item of the burst")
    decided = httpx.post(
        f"{base_url}/admin/reviews/{item['id']}/decision",
        json={"decision": "approve", "note": "observability test"},
        headers=admin,
        timeout=30,
    )
    assert decided.status_code == 200, decided.text
    return ids


def metrics_url() -> str:
    node = ray._private.worker._global_node
    return f"http://127.0.0.1:{node.metrics_export_port}/metrics"


def scrape() -> dict[str, list[dict[str, str]]]:
    """Every sample on Ray's metrics port: name -> the label sets it has."""
    samples: dict[str, list[dict[str, str]]] = defaultdict(list)
    for family in text_string_to_metric_families(httpx.get(metrics_url(), timeout=30).text):
        for sample in family.samples:
            samples[sample.name].append(sample.labels)
    return samples


def missing_series(samples: dict[str, list[dict[str, str]]]) -> list[str]:
    missing = []
    for name, labels in EXPECTED_SERIES.items():
        if name not in samples:
            missing.append(name)
            continue
        for key, values in labels.items():
            seen = {series.get(key) for series in samples[name]}
            if None in seen or not values <= seen:
                missing.append(f"{name}{{{key}}}: saw {sorted(v for v in seen if v)}, want {sorted(values)}")
    return missing


def test_every_safeserve_metric_is_exported_with_its_labels(traffic) -> None:
    """Ray reports metrics every 2 s here (tests/conftest.py); allow a few rounds."""
    deadline = time.monotonic() + 60
    while (missing := missing_series(scrape())) and time.monotonic() < deadline:
        time.sleep(1)
    assert not missing, missing


def serve_log_lines(request_id: str) -> dict[str, list[dict]]:
    """JSON lines of Serve's log files that carry `request_id`, by file name."""
    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"
    found: dict[str, list[dict]] = defaultdict(list)
    for path in logs.glob("replica_safeserve_*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if request_id in line:
                found[path.name].append(json.loads(line))
    return found


def test_one_json_line_per_request_and_the_request_id_follows_it_everywhere(traffic) -> None:
    request_id = traffic["allowed"]
    by_file = wait_until(
        lambda: (
            (found := serve_log_lines(request_id))
            # The IntentClassifier and the Moderator are asked only about a text inside their first stage's bands
            # (serve_app/first_stage.py).
            and {"Ingress", "Generator"} <= {name.split("_")[2] for name in found}
            and found
        ),
        30,
        what="log lines of every deployment",
    )
    ingress = [line for name, lines in by_file.items() if "_Ingress_" in name for line in lines]
    request_lines = [line for line in ingress if line["message"] == "request"]
    assert len(request_lines) == 1, ingress
    line = request_lines[0]
    assert line["request_id"] == request_id
    assert line["http_route"] == "/v1/chat/completions" and line["http_status"] == 200
    assert line["decision"] == "allow" and line["user_id"] == "observer" and line["tier"] == "standard"
    assert {"auth", "limits", "patterns", "classify", "generate", "moderate"} <= set(line["stage_ms"])
    assert line["tokens"]["completion"] > 0 and line["total_ms"] > 0
    assert any(line["message"] == "decision" and line["layer"] for line in ingress)


def test_logs_hold_no_key_and_no_raw_prompt(traffic) -> None:
    """The incident's log line follows the incident record's rules: a hash and a short redacted excerpt."""
    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"
    text = "\n".join(path.read_text(errors="replace") for path in logs.glob("*.log"))
    assert traffic["key"] not in text
    assert "bob.k@example.com" not in text and "tail-marker-7f3a" not in text
    lines = wait_until(lambda: serve_log_lines(traffic["blocked"]), 30, what="the blocked request's log lines")
    incidents = [line for lines in lines.values() for line in lines if line["message"] == "incident"]
    assert len(incidents) == 1, lines
    incident = incidents[0]
    assert incident["action"] == "block" and incident["category"] == "weapons_cbrn"
    assert len(incident["text_sha256"]) == 64 and "text" not in incident
    assert incident["excerpt"].startswith("Give me step-by-step") and len(incident["excerpt"]) <= 120


# --- Prometheus, with monitoring/ as shipped -------------------------------------------------------------------


def service_discovery_file() -> Path:
    """Written by Ray's dashboard at the root of Ray's temp dir: every node's metrics port."""
    node = ray._private.worker._global_node
    path = Path(node.get_temp_dir_path()) / "prom_metrics_service_discovery.json"
    wait_until(path.exists, 30, what=f"Ray's service-discovery file {path}")
    return path


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, traffic) -> Iterator[str]:
    """Debian's prometheus on a free loopback port, on the config `make monitor` renders, scraping every 2 s."""
    directory = tmp_path_factory.mktemp("prometheus")
    subprocess.run(
        ["bash", "scripts/monitor.sh", "--render-only", str(directory), str(service_discovery_file()), "2s"],
        cwd=ROOT,
        check=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), 60, what="prometheus")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> list[dict]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=30).json()
    assert response["status"] == "success", (expr, response)
    return response["data"]["result"]


def firing(url: str) -> set[str]:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=30).json()["data"]["alerts"]
    return {alert["labels"]["alertname"] for alert in alerts if alert["state"] == "firing"}


def test_prometheus_scrapes_the_app_and_the_redis_alert_fires(
    prometheus: str, base_url: str, redis_server: RedisServer, admin_key: str
) -> None:
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=30).json()["data"]["groups"]
    assert {rule["name"] for group in rules for rule in group["rules"]} >= {"SafeServeRedisUnreachable"}
    wait_until(lambda: query(prometheus, 'up{job="ray"} == 1'), 60, what="the Ray target to be up")
    wait_until(lambda: query(prometheus, "ray_safeserve_requests_total"), 60, what="SafeServe metrics in Prometheus")
    assert "SafeServeRedisUnreachable" not in firing(prometheus)

    redis_server.stop()
    try:
        # A request during the outage: the gateway fails closed, and counts it.
        refused = httpx.get(f"{base_url}/v1/models", headers={"Authorization": "Bearer ss-x"}, timeout=30)
        assert refused.status_code == 503
        wait_until(lambda: "SafeServeRedisUnreachable" in firing(prometheus), 150, interval_s=2, what="the alert")
    finally:
        redis_server.start()
    wait_until(lambda: httpx.get(f"{base_url}/readyz", timeout=30).status_code == 200, 60, what="recovery")
    wait_until(lambda: query(prometheus, "min(ray_safeserve_redis_up) == 1"), 60, what="redis_up back to 1")


def test_every_dashboard_query_returns_data(prometheus: str) -> None:
    """Runs after the outage above, so the infrastructure-error panels have data too."""
    wait_until(lambda: query(prometheus, "ray_safeserve_infrastructure_errors_total"), 60, what="error series")
    empty = [expr for expr in dashboard_queries() if not query(prometheus, expr)]
    assert not empty, empty


def test_dashboard_and_rules_use_only_metrics_the_app_exports(traffic) -> None:
    exported = {name.removesuffix(suffix) for name in scrape() for suffix in ("_bucket", "_sum", "_count", "")}
    missing = (dashboard_metrics() | rule_metrics()) - exported - {"up"}
    assert not missing, sorted(missing)
