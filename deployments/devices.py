"""Device choice from config: cuda when asked for (or `auto`) and present, else cpu; CPU threads likewise."""

from __future__ import annotations

import math
import os

import ray
import torch

from deployments.logs import get_logger

logger = get_logger("devices")


def pick_device(requested: str) -> str:
    if requested == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        logger.warning("device 'cuda' was asked for but no GPU is visible to this replica; using cpu")
    return "cpu"


def cpu_threads(configured: int | None) -> int:
    """Threads for a replica's CPU inference: the configured number, else the CPUs Ray assigned this replica
    (rounded up: a fractional share still runs on a core), else, outside Ray, the machine's cores. Not the
    machine's cores inside Ray: a replica given one CPU on a 64-core node would start 64 threads."""
    if configured:
        return configured
    context = ray.get_runtime_context() if ray.is_initialized() else None
    if context is not None and context.get_actor_id() is not None:  # in a replica
        assigned = context.get_assigned_resources().get("CPU")
        if assigned:
            return max(1, math.ceil(assigned))
    return os.cpu_count() or 1
