"""Loggers for SafeServe's Serve components.

They are children of Serve's own `ray.serve` logger (the one Ray documents for deployment code), so each
line goes to the replica's log file in Serve's format, JSON with the request id, deployment and replica
when `logging_config.encoding` is JSON, as the configs set.
"""

from __future__ import annotations

import logging


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger(f"ray.serve.safeserve.{component}")
