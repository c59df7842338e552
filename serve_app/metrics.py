"""SafeServe's ingress metrics, through Ray's metrics system so they are exported next to `ray_serve_*`.

Ray prefixes every name with `ray_` on its metrics port (`safeserve_requests_total` is scraped as
`ray_safeserve_requests_total`). The deployments define their own next to their code: classifier scores in
`deployments/scores.py`, the review queue's in `deployments/review_queue.py`. monitoring/monitoring.md lists all.
"""

from __future__ import annotations

from ray.serve import metrics

LATENCY_BOUNDARIES_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]

REQUESTS = metrics.Counter(
    "safeserve_requests_total",
    description="Requests by route, HTTP status and final safety decision.",
    tag_keys=("route", "status", "decision"),
)
DECISIONS = metrics.Counter(
    "safeserve_decisions_total",
    description="Non-allow decisions (block, review, redact) by safety layer and category.",
    tag_keys=("layer", "category", "action"),
)
STAGE_LATENCY = metrics.Histogram(
    "safeserve_stage_latency_ms",
    description="Latency per pipeline stage in milliseconds (auth, limits, patterns, classify, generate, "
    "moderate, total).",
    boundaries=LATENCY_BOUNDARIES_MS,
    tag_keys=("stage",),
)
TIME_TO_FIRST_TOKEN = metrics.Histogram(
    "safeserve_time_to_first_token_ms",
    description="From the request's arrival to the first answer text the client receives, in milliseconds.",
    boundaries=LATENCY_BOUNDARIES_MS,
    tag_keys=("stream",),
)
TOKENS = metrics.Counter(
    "safeserve_tokens_total",
    description="Tokens processed: `prompt` read by the generator, `completion` generated.",
    tag_keys=("kind",),
)
INFRA_ERRORS = metrics.Counter(
    "safeserve_infrastructure_errors_total",
    description="Faults of Redis or a deployment, by what the request did about it (outcome `fail_open`, "
    "`fail_closed`, or a degraded path such as `incident_logged_only`).",
    tag_keys=("component", "outcome"),
)
LIMIT_REFUSALS = metrics.Counter(
    "safeserve_limit_refusals_total",
    description="Requests refused before any model: rate limits, daily quota, suspension, capability gate.",
    tag_keys=("limit",),
)
REPUTATION_CHANGES = metrics.Counter(
    "safeserve_reputation_changes_total",
    description="Reputation events by kind (block, review, review_rejected, review_approved, suspended, reset, lift, "
    "suspend).",
    tag_keys=("event",),
)
KILL_SWITCHES = metrics.Gauge(
    "safeserve_kill_switch_engaged",
    description="1 while a kill switch is on: `safe_mode` (strict policy for all) or `stop_generation`.",
    tag_keys=("switch",),
)
FIRST_STAGE = metrics.Counter(
    "safeserve_first_stage_total",
    description="Requests by where a safety layer decided them: `decided` by its first stage in the ingress, or "
    "`hop` to the layer's deployment (a text in the first stage's band, or no copy of it yet).",
    tag_keys=("layer", "outcome"),
)
