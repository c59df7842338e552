"""The tests run on the data paths `make run` uses (scripts/env.sh), and everything HTTP stays on loopback."""

from __future__ import annotations

import os

import httpx
import psutil


def test_direct_ingress_on_and_haproxy_off(base_url: str) -> None:
    """HAProxy stays off locally: Ray 2.60 binds its stats and metrics ports (8404, 9101) on all interfaces
    (the listener test below fails if it runs)."""
    assert os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "0"


def test_http_listeners_bind_to_loopback_only(base_url: str, serve_instance: int) -> None:
    assert httpx.get(f"{base_url}/healthz").status_code == 200
    # The proxy port, the replicas' direct-ingress HTTP ports, and HAProxy's stats and metrics ports. (Ray's
    # gRPC ports, direct-ingress gRPC among them, listen on all interfaces whatever the config says: the
    # README says never to expose them.)
    serve_ports = {serve_instance, *range(30000, 31000), 8404, 9101}
    listeners = [
        c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port in serve_ports
    ]
    assert any(c.laddr.port == serve_instance for c in listeners)
    assert {c.laddr.ip for c in listeners} == {"127.0.0.1"}
