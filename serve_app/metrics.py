"""SafeServe's metrics, through Ray's metrics system so they are exported next to `ray_serve_*`."""

from __future__ import annotations

from ray.serve import metrics

REQUESTS = metrics.Counter(
    "safeserve_requests_total",
    description="Requests by route, HTTP status and final safety decision.",
    tag_keys=("route", "status", "decision"),
)
DECISIONS = metrics.Counter(
    "safeserve_decisions_total",
    description="Non-allow decisions by safety layer, category and action.",
    tag_keys=("layer", "category", "action"),
)
STAGE_LATENCY = metrics.Histogram(
    "safeserve_stage_latency_ms",
    description="Latency per pipeline stage in milliseconds.",
    boundaries=[1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000],
    tag_keys=("stage",),
)
INFRA_ERRORS = metrics.Counter(
    "safeserve_infrastructure_errors_total",
    description="Faults of Redis or a deployment, and whether the request failed open or closed.",
    tag_keys=("component", "outcome"),
)
LIMIT_REFUSALS = metrics.Counter(
    "safeserve_limit_refusals_total",
    description="Requests refused before any model: rate limits, daily quota, suspension, capability gate.",
    tag_keys=("limit",),
)
REPUTATION_CHANGES = metrics.Counter(
    "safeserve_reputation_changes_total",
    description="Reputation events by kind (block, review, review_rejected, suspended, reset, lift, suspend).",
    tag_keys=("event",),
)
