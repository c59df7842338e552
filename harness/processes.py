"""Processes on loopback for the tests and the benchmarks: free ports, waiting, a redis-server, a deployed app,
an ASGI app in a thread."""

from __future__ import annotations

import copy
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis
import uvicorn
import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONFIG = ROOT / "configs" / "local.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout_s: float, interval_s: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


class RedisServer:
    """A redis-server on a free loopback port with AOF in a temporary directory; can be stopped and restarted."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._pings, 10, what="redis-server to answer")

    def _pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def app_deploy_config(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The `safeserve` application of configs/local.yaml and its logging config, with fast shutdowns for tests
    and `overrides` merged into the named deployments' user_config (top-level keys replaced)."""
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    app = copy.deepcopy(config["applications"][0])
    for deployment in app["deployments"]:
        deployment["graceful_shutdown_wait_loop_s"] = 0.1
        deployment["graceful_shutdown_timeout_s"] = 0.5
        deployment["user_config"].update((overrides or {}).get(deployment["name"], {}))
    return {"logging_config": config["logging_config"], "applications": [app]}


def deployment_config(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in config["applications"][0]["deployments"] if d["name"] == name)


def deploy(config: dict[str, Any], timeout_s: float = 300) -> None:
    """Deploy as `serve deploy` does (config path, so user_config changes are applied live)."""
    from ray import serve
    from ray.serve._private.api import serve_start
    from ray.serve.schema import ServeDeploySchema

    client = serve_start()
    client.deploy_apps(ServeDeploySchema.model_validate(config))

    def running() -> bool:
        status = serve.status().applications.get("safeserve")
        if status is not None and status.status == "DEPLOY_FAILED":
            raise RuntimeError(f"deploy failed: {status.message}")
        return status is not None and status.status == "RUNNING"

    wait_until(running, timeout_s, interval_s=0.5, what="the safeserve app to be RUNNING")


def wait_ready(base_url: str, timeout_s: float = 120) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{base_url}/readyz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout_s, interval_s=0.5, what="/readyz")


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1, in a daemon thread (`start`) or in this one (`run`)."""

    def __init__(self, app: Any, port: int, what: str) -> None:
        self.what = what
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        wait_until(lambda: self.server.started, 10, what=self.what)

    def run(self) -> None:
        self.server.run()

    def stop(self, timeout_s: float) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
