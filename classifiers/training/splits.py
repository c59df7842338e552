"""How a text is recognised across sources, and which split it belongs to.

Every labelled text SafeServe trains or evaluates on is placed by a hash of its folded form, so the same text
lands in the same split whatever file it comes from and however often the data are rebuilt: `train` (80 %),
`dev` (10 %: thresholds and bands are chosen here) and `test` (10 %: figures are reported here, and nothing
is tuned on it).
"""

from __future__ import annotations

import hashlib
import re

TRAIN, DEV, TEST = "train", "dev", "test"


def contamination_key(text: str) -> str:
    """Case, punctuation and spacing folded: two texts with one key count as the same text."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def bucket(text: str) -> int:
    """0-99, fixed for a text's folded form."""
    return int(hashlib.sha256(contamination_key(text).encode()).hexdigest()[:8], 16) % 100


def split_of(text: str) -> str:
    value = bucket(text)
    return TEST if value < 10 else DEV if value < 20 else TRAIN
