"""How many CPU threads a replica's inference uses when its config does not say."""

from __future__ import annotations

import os

import ray

from deployments.devices import cpu_threads


@ray.remote(num_cpus=0.25)
class QuarterCpuReplica:
    def threads(self) -> tuple[int, int]:
        return cpu_threads(None), cpu_threads(3)


def test_threads_come_from_config_then_the_replicas_cpus_then_the_machine(serve_instance: int) -> None:
    replica = QuarterCpuReplica.remote()
    try:
        # a quarter of a CPU still runs on one core; a configured number wins
        assert ray.get(replica.threads.remote(), timeout=60) == (1, 3)
    finally:
        ray.kill(replica)
    assert cpu_threads(None) == os.cpu_count()  # this test's process is Ray's driver, no replica
    assert cpu_threads(3) == 3
