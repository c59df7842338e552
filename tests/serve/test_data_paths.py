"""The tests run on the data paths `make run` uses (scripts/env.sh), and everything HTTP stays on loopback."""

from __future__ import annotations

import os

import httpx
import psutil


def test_direct_ingress_and_haproxy_on() -> None:
    """The tests run on production's data paths, HAProxy included (scripts/haproxy_loopback.sh keeps it on
    loopback: the listener test below fails if it does not)."""
    assert os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"].endswith("scripts/haproxy_loopback.sh")


def test_haproxy_serves_the_http_port(base_url: str, serve_instance: int) -> None:
    assert httpx.get(f"{base_url}/healthz").status_code == 200
    owners = {
        psutil.Process(c.pid).name()
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == serve_instance and c.pid
    }
    assert owners == {"haproxy"}


def test_http_listeners_bind_to_loopback_only(base_url: str, serve_instance: int) -> None:
    assert httpx.get(f"{base_url}/healthz").status_code == 200
    # HAProxy's port, the fallback proxy's, the replicas' direct-ingress HTTP ports (this instance's range, and
    # Ray's default one), and HAProxy's stats and metrics ports. (Ray's gRPC ports, direct-ingress gRPC among
    # them, listen on all interfaces whatever the config says: the README says never to expose them.)
    haproxy_ports = {int(os.environ[f"RAY_SERVE_HAPROXY_{name}_PORT"]) for name in ("STATS", "METRICS")}
    fallback_proxy = int(os.environ["RAY_SERVE_FALLBACK_PROXY_HTTP_PORT"])
    ours = range(
        int(os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"]),
        int(os.environ["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]) + 1,
    )
    serve_ports = {serve_instance, fallback_proxy, *ours, *range(30000, 31000), *haproxy_ports}
    listeners = [
        c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port in serve_ports
    ]
    assert any(c.laddr.port == serve_instance for c in listeners)
    assert {c.laddr.port for c in listeners} >= haproxy_ports
    assert {c.laddr.ip for c in listeners} == {"127.0.0.1"}
