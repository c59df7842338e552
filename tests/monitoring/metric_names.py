"""The metric names the monitoring files use, read from the files themselves.

`dashboard_metrics()` and `rule_metrics()` are the exported base names (`ray_*`, histogram `_bucket`/`_sum`/
`_count` suffixes stripped) that the Grafana dashboard and the alert rules query; `dashboard_queries()` is every
panel query, made runnable outside Grafana. METRICS is the catalogue in monitoring/monitoring.md: what SafeServe
and Ray Serve export. Used by test_monitoring_files.py and by the end-to-end test that scrapes a live app.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "safeserve-overview.json"
RULES = ROOT / "monitoring" / "prometheus" / "alerts.rules.yml"

SAFESERVE_METRICS = frozenset(
    {
        "ray_safeserve_requests_total",
        "ray_safeserve_decisions_total",
        "ray_safeserve_stage_latency_ms",
        "ray_safeserve_time_to_first_token_ms",
        "ray_safeserve_tokens_total",
        "ray_safeserve_infrastructure_errors_total",
        "ray_safeserve_limit_refusals_total",
        "ray_safeserve_reputation_changes_total",
        "ray_safeserve_kill_switch_engaged",
        "ray_safeserve_config_rejected",
        "ray_safeserve_classifier_score",
        "ray_safeserve_moderator_texts_total",
        "ray_safeserve_first_stage_total",
        "ray_safeserve_intent_judge_answers_total",
        "ray_safeserve_redis_up",
        "ray_safeserve_review_queue_depth",
        "ray_safeserve_review_oldest_pending_age_seconds",
        "ray_safeserve_review_sla_misses_open",
        "ray_safeserve_review_sla_misses_total",
        "ray_safeserve_review_decisions_total",
        "ray_safeserve_review_time_to_decision_seconds",
        "ray_safeserve_review_spool_total",
        "ray_safeserve_retention_trimmed_total",
    }
)
SERVE_METRICS = frozenset(
    {
        "ray_serve_deployment_replica_starts_total",
        "ray_serve_deployment_replica_healthy",
        "ray_serve_deployment_processing_latency_ms",
        "ray_serve_deployment_request_counter_total",
        "ray_serve_deployment_error_counter_total",
        "ray_serve_num_http_requests_total",
        "ray_serve_num_ongoing_requests_at_replicas",
    }
)
METRICS = SAFESERVE_METRICS | SERVE_METRICS

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"(?<![A-Za-z0-9_:])ray_[A-Za-z0-9_:]+")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m"}


def metric_names(expr: str) -> set[str]:
    """Exported base names (`ray_...`) in a PromQL expression; label values (quoted) are not names."""
    names = set()
    for name in _NAME.findall(_QUOTED.sub('""', expr)):
        for suffix in _HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
                break
        names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel, those nested in collapsed rows included."""
    panels = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    """Every panel query, with Grafana's interval variables replaced by 1m so Prometheus can run it."""
    queries = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in _GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append(expr)
    return queries


def dashboard_metrics() -> set[str]:
    return set().union(*(metric_names(expr) for expr in dashboard_queries()))


def rule_metrics() -> set[str]:
    return set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
