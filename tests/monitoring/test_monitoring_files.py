"""The monitoring files (monitoring/): Prometheus config and alert rules checked and unit-tested with promtool,
the Kubernetes PrometheusRule in step with the rules, runbook anchors that exist, a well-formed Grafana
dashboard, and only metric names that SafeServe and Ray Serve export. Fast: no Ray, no Redis, no network.

promtool comes from the Debian package `prometheus` (scripts/system_deps.sh --test installs it); without it
these tests fail rather than skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.monitoring.metric_names import (
    METRICS,
    ROOT,
    RULES,
    alert_rules,
    dashboard,
    dashboard_metrics,
    dashboard_panels,
    dashboard_queries,
    metric_names,
    rule_metrics,
)

PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
PROMETHEUSRULE = ROOT / "monitoring" / "k8s" / "prometheusrule.yaml"
PODMONITOR = ROOT / "monitoring" / "k8s" / "podmonitor.yaml"
PLAYBOOK = ROOT / "monitoring" / "monitoring.md"
GRAFANA = ROOT / "monitoring" / "grafana"
SEVERITIES = {"page", "ticket"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: install the Debian package `prometheus` (scripts/system_deps.sh --test)"
    result = subprocess.run([exe, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{result.stdout}\n{result.stderr}"
    return result


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def playbook_anchors() -> set[str]:
    anchors, in_code = set(), False
    for line in PLAYBOOK.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"#{1,6} (.+)", line)):
            anchors.add(github_anchor(match.group(1)))
    return anchors


# --- Prometheus: config, rules, rule unit tests


def test_prometheus_config_is_valid() -> None:
    # Also checks the rule files it names; the service-discovery file need not exist (a warning only).
    promtool("check", "config", CONFIG)


def test_prometheus_config_reads_rays_service_discovery_file() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    assert config["rule_files"] == ["alerts.rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ray"
    assert job["file_sd_configs"][0]["files"] == ["/tmp/ray/prom_metrics_service_discovery.json"]


def test_alert_rules_are_valid() -> None:
    out = promtool("check", "rules", RULES)
    assert f"{len(alert_rules())} rules found" in out.stdout


def test_alert_rule_unit_tests_pass() -> None:
    promtool("test", "rules", RULE_TESTS)


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["alerts.rules.yml"]
    checks = [check for case in tests["tests"] for check in case.get("alert_rule_test", [])]
    fired = {check["alertname"] for check in checks if check.get("exp_alerts")}
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set(), "alerts without a unit test in which they fire"
    assert {check["alertname"] for check in checks} <= names, "unit tests of alerts that do not exist"


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    anchors = playbook_anchors()
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules), "duplicate alert names"
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name
        assert annotations["runbook_url"] == f"monitoring/monitoring.md#{name.lower()}", name
        assert name.lower() in anchors, f"no `### {name}` heading in monitoring/monitoring.md"


def test_required_alerts_exist() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) >= {
        "SafeServeBlockRateSpike",
        "SafeServeErrorRateSpike",
        "SafeServeRefusalSpike",
        "SafeServeReviewSLABreach",
        "SafeServeClassifierLatencyHigh",
        "SafeServeGenerationLatencyHigh",
        "SafeServeRedisUnreachable",
        "SafeServeFailOpen",
        "SafeServeFailClosed",
        "SafeServeSuspensionSpike",
        "SafeServeReplicaRestarts",
        "SafeServeReplicaUnhealthy",
        "SafeServeKillSwitchEngaged",
        "SafeServeConfigRejected",
        "SafeServeScrapeDown",
    }
    # The end-to-end test stops redis-server and waits for this one: keep its shape.
    redis = rules["SafeServeRedisUnreachable"]
    assert redis["expr"].strip() == "min(ray_safeserve_redis_up) == 0"
    assert redis["for"] == "30s"
    assert redis["labels"]["severity"] == "page"


# --- Kubernetes


def test_prometheusrule_is_generated_from_the_rules() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/render_prometheusrule.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = PROMETHEUSRULE.read_text()
    assert text.startswith("# GENERATED by scripts/render_prometheusrule.py")
    resource = yaml.safe_load(text)
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_prometheusrule_rules_are_valid(tmp_path: Path) -> None:
    spec = yaml.safe_load(PROMETHEUSRULE.read_text())["spec"]
    rules_file = tmp_path / "prometheusrule.rules.yml"
    rules_file.write_text(yaml.safe_dump(spec))
    promtool("check", "rules", rules_file)


def test_podmonitor_scrapes_kuberay_pods() -> None:
    monitor = yaml.safe_load(PODMONITOR.read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"any": True}
    assert spec["selector"]["matchLabels"] == {"ray.io/is-ray-node": "yes"}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "15s")
    relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    assert relabel["ray_io_cluster"]["sourceLabels"] == ["__meta_kubernetes_pod_label_ray_io_cluster"]
    # SafeServeScrapeDown selects up{job="ray"}, as on one machine.
    assert relabel["job"]["replacement"] == "ray"


# --- Grafana


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert (board["uid"], board["title"], board["schemaVersion"]) == ("safeserve-overview", "SafeServe overview", 39)
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == [
        "Traffic and decisions",
        "Blocks by category",
        "Latency per stage",
        "Review queue",
        "Limits and reputation",
        "Generation",
        "Classifier scores",
        "Infrastructure health",
    ]
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        targets = panel["targets"]
        assert targets, panel["title"]
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "prometheus", panel["title"]


def test_dashboard_rate_windows_use_rate_interval() -> None:
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            for window in re.findall(r"\brate\([^\[]*\[([^\]]+)\]", target["expr"]):
                assert window == "$__rate_interval", f"{panel['title']}: rate window {window}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no expression checker in this version; recording rules get the same parser.
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(dashboard_queries())]
    rules_file = tmp_path / "dashboard.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", rules_file)


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["uid"], source["type"], source["url"]) == ("prometheus", "prometheus", "${PROMETHEUS_URL}")
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "safeserve.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/safeserve"


# --- Metric names


def test_metric_names_helper() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(ray_a_ms_bucket{x="ray_not_a_name"}[1m]))) / xray_b + ray_c_count'
    assert metric_names(expr) == {"ray_a_ms", "ray_c"}


def test_dashboard_and_rules_use_only_exported_metrics() -> None:
    assert dashboard_metrics() - METRICS == set()
    assert rule_metrics() - METRICS == set()
    assert "ray_safeserve_redis_up" in rule_metrics()
    assert not any("$" in query for query in dashboard_queries())


def test_playbook_lists_every_metric() -> None:
    text = PLAYBOOK.read_text()
    missing = {name for name in METRICS if f"`{name}`" not in text}
    assert missing == set(), "metrics missing from the catalogue in monitoring/monitoring.md"


# --- make monitor's rendering


@pytest.mark.parametrize("interval", ["", "2s"])
def test_monitor_renders_the_config(tmp_path: Path, interval: str) -> None:
    sd_file = tmp_path / "ray" / "prom_metrics_service_discovery.json"
    args = ["bash", "scripts/monitor.sh", "--render-only", str(tmp_path / "out"), str(sd_file)]
    subprocess.run(args + ([interval] if interval else []), cwd=ROOT, check=True, timeout=60)
    rendered = tmp_path / "out" / "prometheus.yml"
    config = yaml.safe_load(rendered.read_text())
    assert config["scrape_configs"][0]["file_sd_configs"][0]["files"] == [str(sd_file)]
    expected = interval or "15s"
    assert config["global"] == {"scrape_interval": expected, "evaluation_interval": expected}
    assert (tmp_path / "out" / "alerts.rules.yml").read_text() == RULES.read_text()
    promtool("check", "config", rendered)
