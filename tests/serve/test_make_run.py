"""`make run` guarding an existing model server: scripts/run.sh (what `make run` calls) started with the three
Generator variables on its own ports and SAFESERVE_HOME, a scripted upstream as the model server, then stopped
with SIGTERM. About 85 s on a 2-core machine, most of it Ray and the safety models starting and Serve's
shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from harness.processes import ROOT, free_port, wait_ready, wait_until
from harness.scripted_upstream import CLEAN, PERSONA, ScriptedUpstream
from tests.support import streamed

pytestmark = pytest.mark.e2e
ADMIN_KEY = "ss-admin-make-run-test-0123456789"
GUARDED_MODEL = "guarded-model"


def started_by(marker: str) -> list[psutil.Process]:
    """Processes whose command line names `marker` (this run's Ray temp dir or Redis port)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


def test_make_run_guards_the_upstream_named_in_the_environment(models_dir: Path, tmp_path: Path) -> None:
    upstream = ScriptedUpstream(delay_s=0.002).start()
    http_port, redis_port = free_port(), free_port()
    ray_tmp = tempfile.mkdtemp(prefix="ssrun-", dir="/tmp")  # Ray's socket paths must stay short
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SAFESERVE_"))}
    environment.update(
        SAFESERVE_HOME=str(tmp_path / "home"),
        SAFESERVE_MODELS_DIR=str(models_dir),
        SAFESERVE_HTTP_PORT=str(http_port),
        SAFESERVE_REDIS_PORT=str(redis_port),
        SAFESERVE_ADMIN_KEY=ADMIN_KEY,
        RAY_TMPDIR=ray_tmp,
        SAFESERVE_GENERATOR_BACKEND="openai_upstream",
        SAFESERVE_UPSTREAM_URL=upstream.url,
        SAFESERVE_UPSTREAM_MODEL=GUARDED_MODEL,
    )
    log = (tmp_path / "run.log").open("w")
    command = ["bash", "scripts/run.sh"]
    run = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{http_port}"
    try:
        wait_ready(base_url, timeout_s=300)
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        created = httpx.post(
            f"{base_url}/admin/keys", json={"user_id": "make-run", "tier": "standard"}, headers=admin, timeout=30
        )
        assert created.status_code == 201, created.text
        user = {"Authorization": f"Bearer {created.json()['key']}"}

        def chat(content: str) -> httpx.Response:
            body = {"model": "safeserve-smollm2", "messages": [{"role": "user", "content": content}], "stream": True}
            return httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=user, timeout=120)

        content, finish = streamed(chat("Tell me about a quiet afternoon in the park.").text)
        assert (content, finish) == (" ".join(CLEAN), "stop")
        assert upstream.received[-1]["model"] == GUARDED_MODEL
        assert upstream.received[-1]["messages"][0]["role"] == "system"  # the safety preamble went first
        content, finish = streamed(chat("Tell me about the canal.").text)
        assert finish == "content_filter" and "DAN" not in content
        assert " ".join(PERSONA).startswith(content)
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(120)
        finally:
            log.close()
            upstream.stop()
    assert run.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
    # Nothing it started is left: no Ray process of its temp dir, no Redis on its port.
    wait_until(lambda: not started_by(ray_tmp), 30, what="Ray processes of the run to exit")
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=redis_port).ping()
    shutil.rmtree(ray_tmp)
