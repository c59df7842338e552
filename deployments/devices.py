"""Device choice from config: cuda when asked for (or `auto`) and present, else cpu."""

from __future__ import annotations

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
