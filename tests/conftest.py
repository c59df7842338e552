"""Session fixtures: one real redis-server, one Ray instance with Serve, one deployed SafeServe app."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.processes import ROOT, RedisServer, app_deploy_config, deploy, deployment_config, free_port, wait_ready

ADMIN_KEY = f"ss-admin-test-{secrets.token_urlsafe(16)}"
# A review-band input pattern, so tests can drive a request into the review queue deterministically.
REVIEW_CANARY_RULE = {
    "name": "test-review-canary",
    "category": "privacy",
    "action": "review",
    "pattern": "zebra-canary-review",
}


# A review-band pattern in a `hold` category (self_harm in configs/local.yaml): the answer is withheld.
HOLD_CANARY_RULE = {
    "name": "test-hold-canary",
    "category": "self_harm",
    "action": "review",
    "pattern": "zebra-canary-hold",
}
# An output deny-list rule for the scripted upstream's unsafe passage (harness/scripted_upstream.py).
UNSAFE_PASSAGE_RULE = {
    "name": "test-unsafe-passage",
    "category": "violence",
    "action": "block",
    "pattern": "zebra unsafe passage",
}
# An output deny-list rule in a `hold` category for the scripted upstream's held passage: streamed or not, the
# answer is withheld until a reviewer approves it.
HELD_PASSAGE_RULE = {
    "name": "test-held-passage",
    "category": "self_harm",
    "action": "review",
    "pattern": "zebra held passage",
}
EXCERPT_CHARS = 200  # shorter than the scripted held answer, so reviewers must be shown more than the excerpt
CLAIM_TIMEOUT_S = 3  # short, so a test can watch an unattended claim return to the queue
REVIEW_SPOOL = Path(tempfile.mkdtemp(prefix="safeserve-spool-")) / "reviews.jsonl"


def session_app_config() -> dict:
    config = app_deploy_config()
    ingress = deployment_config(config, "Ingress")
    ingress["user_config"]["input_patterns"] += [REVIEW_CANARY_RULE, HOLD_CANARY_RULE]
    deployment_config(config, "Moderator")["user_config"]["denylist"] += [UNSAFE_PASSAGE_RULE, HELD_PASSAGE_RULE]
    deployment_config(config, "ReviewQueue")["user_config"].update(
        claim_timeout_s=CLAIM_TIMEOUT_S,
        sweep_interval_s=0.5,
        spool_path=str(REVIEW_SPOOL),
        excerpt_chars=EXCERPT_CHARS,
    )
    tiers = ingress["user_config"]["tiers"]
    tiers["sampled"] = {**tiers["standard"], "review_sample_rate": 1.0}  # every allowed answer to review
    ingress["num_replicas"] = 2  # limits, revocation and reputation must hold across ingress replicas
    return config


# Default models come from inside packages; nothing may be fetched from a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    from classifiers.paths import home_dir

    return home_dir() / "cache" / "wheels"


@pytest.fixture(scope="session")
def models_dir(cache_dir: Path) -> Path:
    """Every default artefact, built (or taken from the cache) by the real `safeserve models build` code."""
    from classifiers.models_build import build_all
    from classifiers.paths import models_dir as default_models_dir

    build_all(default_models_dir(), cache_dir)
    return default_models_dir()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def haproxy_of_this_session() -> str:
    """Ray's HAProxy files of this session's own, so that the suite can run beside `make run`: scripts/env.sh
    gives each SAFESERVE_HOME its own (the suite shares make run's), and each running instance its own ports."""
    directory = tempfile.mkdtemp(prefix="sshap-", dir="/tmp")  # the admin socket's path must stay short
    os.environ.update(
        SAFESERVE_HAPROXY_DIR=directory,
        RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=f"{directory}/haproxy.cfg",
        RAY_SERVE_HAPROXY_SOCKET_PATH=f"{directory}/admin.sock",
        RAY_SERVE_HAPROXY_SERVER_STATE_BASE=directory,
        RAY_SERVE_HAPROXY_SERVER_STATE_FILE=f"{directory}/server-state",
        RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=f"{directory}/metrics.sock",
    )
    return directory


def stop_haproxy(directory: str) -> None:
    """Ray's HAProxy can outlive Ray: stop this session's, found by its directory, and remove its files."""
    for process in psutil.process_iter(["cmdline"]):
        if any(arg.startswith(f"{directory}/") for arg in process.info["cmdline"] or ()):
            process.kill()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def serve_instance(redis_server: RedisServer, models_dir: Path) -> Iterator[int]:
    """Ray + Serve on a free loopback port, on the same data paths as `make run` (scripts/env.sh).

    The environment set here is inherited by every Ray process, replicas included."""
    os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
    haproxy_dir = haproxy_of_this_session()
    os.environ.update(
        SAFESERVE_REDIS_URL=redis_server.url,
        SAFESERVE_ADMIN_KEY=ADMIN_KEY,
        SAFESERVE_MODELS_DIR=str(models_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
    )
    import ray
    from ray import serve

    port = free_port()
    # The dashboard writes Prometheus' service-discovery file (monitoring/); metrics are reported every 2 s
    # (Ray's default is 10 s) so that the monitoring tests see a burst of traffic soon after it.
    ray.init(
        num_cpus=4,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=free_port(),
        _metrics_export_port=free_port(),
        _system_config={"metrics_report_interval_ms": 2000},
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()
    ray.shutdown()
    stop_haproxy(haproxy_dir)


@pytest.fixture(scope="session")
def base_url(serve_instance: int) -> str:
    """The whole SafeServe app from configs/local.yaml, deployed once for the session."""
    url = f"http://127.0.0.1:{serve_instance}"
    deploy(session_app_config())
    wait_ready(url)
    return url


@pytest.fixture(scope="session")
def admin_key() -> str:
    return ADMIN_KEY


@pytest.fixture(scope="session")
def project_root():
    return ROOT
