"""The append-only audit trail: one Redis stream (`safeserve:audit`) of who did what, when, why, and the state
before and after. Review actions, reputation changes and admin actions all write here; nothing deletes from it
except the retention trim.
"""

from __future__ import annotations

import json
import time
from typing import Any

AUDIT_STREAM = "safeserve:audit"
# The ingress's decision records (serve_app/incidents.py); named here, beside the audit stream, for retention.
INCIDENT_STREAM = "safeserve:incidents"


def audit_fields(
    actor: str, action: str, target: str, before: Any = None, after: Any = None, reason: str = ""
) -> dict[str, str]:
    """The fields of one audit entry (Redis stream values are strings; states are JSON)."""
    return {
        "actor": actor,
        "action": action,
        "target": target,
        "reason": reason,
        "before": json.dumps(before),
        "after": json.dumps(after),
        "ts": f"{time.time():.3f}",
    }
