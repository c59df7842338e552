"""Train the intent ensemble: an n-gram model and an embedding model, stacked into calibrated probabilities.

- n-gram member: TF-IDF (word 1-2 + char_wb 2-5) + multinomial logistic regression. About a millisecond per
  text, sees exact phrasing and obfuscated spellings.
- embedding member: a logistic regression on all-MiniLM-L6-v2 sentence embeddings (classifiers.embeddings).
  Sees meaning: paraphrases and requests worded unlike any training row.
- neighbours member: the training rows nearest to a text's embedding vote on its class
  (classifiers.neighbours). Sees the pockets of meaning the head's flat boundaries cut through.
- combiner: a multinomial logistic regression on the members' log-probabilities, fit on their out-of-fold
  predictions (so it learns how far to trust each where it has not seen the text), which is what calibrates
  the final per-category probabilities.
- as served, a cascade (classifiers.intent_model): the embedding members only read texts the n-gram member is
  unsure of; its out-of-fold figures are reported beside the full ensemble's.

Folds are group-aware (augmented or leetspeak variants of one prompt never straddle them); the reported metrics
are out-of-fold. The members served are refit on all rows. The evaluation sets (eval_data) are never trained on.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from classifiers.embeddings import SentenceEmbedder
from classifiers.intent_model import (
    COMBINER_FILE,
    DEFAULT_EMBED_BAND,
    EMBEDDING_HEAD_FILE,
    NGRAM_FILE,
    PROVENANCE_FILE,
    IntentModel,
    stack_features,
    unsure,
)
from classifiers.neighbours import NEIGHBOURS_FILE, NearestNeighbours
from classifiers.taxonomy import PROMPT_ATTACKS
from classifiers.training import sources
from classifiers.training.intent_data import BENIGN, Example, load_all, load_everyday_holdout, to_csv_bytes
from classifiers.training.provenance import build_info, sha256_bytes

SEED = 20261125
FOLDS = 3
DECISION_THRESHOLD = 0.5  # the flag rate per category is reported at 1 - P(benign) >= this
REPORT_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
EVERYDAY_THRESHOLDS = (0.5, 0.8)
BAND_LOWS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)  # cascade bands tried out of fold (band_search)
BAND_HIGHS = (0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
EMBEDDING_C = 10.0
# Chosen on out-of-fold ensemble recall at 2 % benign FPR (the two-member ensemble: 91.9 %), never on the
# evaluation sets. Votes weighted relative to the nearest row: k 5: 92.5, 10: 92.6, 20: 92.9, 40: 92.8 at
# temperature 0.05 (k 20, temperature 0.02: 92.3, 0.1: 92.8), but they put an everyday hold-out prompt at 0.77.
# Absolute weights (classifiers.neighbours), k 20, temperature 0.05, prior votes 0.01: 92.4, 0.05: 92.3, 0.2: 92.1
# (everyday hold-out at most 0.59); temperature 0.1, prior votes 0.05: 92.5 but an everyday prompt at 0.79, 0.2:
# 92.3. The differences are a few tenths of a point.
NEIGHBOURS_K = 20
NEIGHBOURS_TEMPERATURE = 0.05
NEIGHBOURS_PRIOR_VOTES = 0.01
# Block thresholds tried per category group, and the single threshold whose false-positive rate they must hold.
GROUP_THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))  # 0.3 .. 0.95
REFERENCE_THRESHOLD = 0.7


def make_ngram_model() -> Pipeline:
    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    min_df=2,
                    strip_accents="unicode",
                    lowercase=True,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    sublinear_tf=True,
                    min_df=2,
                    lowercase=True,
                    max_features=200_000,
                ),
            ),
        ]
    )
    # C=3 (was 4): with the everyday seed rows, C=4 lost 1.6 points of harm recall on the held-out split and
    # C=2 pushed benign FPR over 0.05 (0.052); C=3 kept harm recall at the C=2 level with benign FPR 0.047.
    classifier = LogisticRegression(C=3.0, max_iter=3000, random_state=SEED)
    return Pipeline([("features", features), ("classifier", classifier)])


def sample_weights(labels: list[str]) -> np.ndarray:
    """Class-balanced weights. Harm categories have 20-60 rows against ~9k injection and ~11k benign rows;
    unweighted (or square-root weighted) they were recalled at about 0.70 on the held-out split, balanced at
    about 0.85, for about +0.5 point of benign false positives (measured with C in 1..16; C=4 was the best trade
    before the everyday seed rows, C=3 after). Upweighting the everyday seed rows (x2, x3) cut everyday false
    positives a little more but cost 1.5-2.5 points of harm recall, so they keep weight 1."""
    counts = Counter(labels)
    largest = max(counts.values())
    return np.array([largest / counts[label] for label in labels])


def folds(rows: list[Example]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, group-aware, seeded folds for the out-of-fold predictions."""
    labels = [r.label for r in rows]
    groups = [r.group or f"text:{r.text.lower()}" for r in rows]
    splitter = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    return list(splitter.split(np.zeros(len(rows)), labels, groups))


def out_of_fold(fit_predict, n_rows: int, n_classes: int, splits) -> np.ndarray:
    """Each row's probabilities from a model that did not see it: `fit_predict(train_idx, test_idx)`."""
    proba = np.zeros((n_rows, n_classes))
    for train_idx, test_idx in splits:
        proba[test_idx] = fit_predict(train_idx, test_idx)
    return proba


def attack_masks(rows: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Which rows are attacks, and which of those are prompt attacks (the rest are harmful requests)."""
    is_attack = np.array([r.label != BENIGN for r in rows])
    return is_attack, np.array([r.label in PROMPT_ATTACKS for r in rows])


def cascade(
    oof_ngram: np.ndarray, oof_combined: np.ndarray, benign: int, band: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Out of fold, the cascade as served: the ensemble's probabilities where the n-gram member is unsure, its own
    elsewhere. Returns them and the rows embedded."""
    embedded = unsure(oof_ngram, benign, band)
    return np.where(embedded[:, None], oof_combined, oof_ngram), embedded


def evaluate(proba: np.ndarray, classes: list[str], rows: list[Example]) -> dict:
    """Recall and benign false-positive rate of out-of-fold probabilities, at fixed thresholds on
    1 - P(benign) and at the thresholds that hold the benign false-positive rate to 1 % and 2 %."""
    score = 1.0 - proba[:, classes.index(BENIGN)]
    is_attack, is_prompt_attack = attack_masks(rows)
    is_harm = is_attack & ~is_prompt_attack

    def rate(mask: np.ndarray, threshold: float) -> float | None:
        return round(float((score[mask] >= threshold).mean()), 4) if mask.any() else None

    def summary(threshold: float) -> dict:
        return {
            "attack_recall": rate(is_attack, threshold),
            "prompt_attack_recall": rate(is_prompt_attack, threshold),
            "harm_recall": rate(is_harm, threshold),
            "benign_fpr": rate(~is_attack, threshold),
        }

    at_fpr = {}
    for fpr in (0.01, 0.02):
        threshold = float(np.quantile(score[~is_attack], 1.0 - fpr))
        at_fpr[str(fpr)] = {"threshold": round(threshold, 4), **summary(threshold)}
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    per_category = {}
    for label in sorted({r.label for r in rows}):
        mask = np.array([r.label == label for r in rows])
        per_category[label] = {
            "n": int(mask.sum()),
            "flag_rate": rate(mask, DECISION_THRESHOLD),
            "category_accuracy": round(
                float(np.mean([p == label for p, m in zip(predicted, mask, strict=True) if m])), 4
            ),
        }
    return {
        "rows": len(rows),
        "score": "1 - P(benign)",
        **summary(DECISION_THRESHOLD),
        "decision_threshold": DECISION_THRESHOLD,
        "by_threshold": {str(t): summary(t) for t in REPORT_THRESHOLDS},
        "at_benign_fpr": at_fpr,
        "per_category": per_category,
    }


def group_thresholds(proba: np.ndarray, classes: list[str], rows: list[Example]) -> dict:
    """Out of fold, one block threshold for the prompt-attack categories and one for the harm categories that
    recall the most attacks at no more benign false positives than REFERENCE_THRESHOLD on every category.

    A text is decided as the policy decides it: its top non-benign category carries 1 - P(benign) and is
    compared with that category's threshold. The two groups' scores are calibrated differently (thousands of
    injection rows against tens of rows per harm category), so one threshold for both spends the false-positive
    budget unevenly. The policy's thresholds (configs/*.yaml) are weighed against this, found on training data,
    never against the evaluation sets (docs/evaluation.md)."""
    benign = classes.index(BENIGN)
    score = 1.0 - proba[:, benign]
    unsafe = proba.copy()
    unsafe[:, benign] = -1.0
    top_is_prompt_attack = np.isin(np.array(classes)[unsafe.argmax(axis=1)], [str(c) for c in PROMPT_ATTACKS])
    is_attack, _ = attack_masks(rows)
    budget = float((score[~is_attack] >= REFERENCE_THRESHOLD).mean())
    reference_recall = float((score[is_attack] >= REFERENCE_THRESHOLD).mean())
    best: tuple[float, float, float, float] | None = None  # recall, -fpr, prompt-attack threshold, harm threshold
    for prompt_attack in GROUP_THRESHOLDS:
        for harm in GROUP_THRESHOLDS:
            flagged = score >= np.where(top_is_prompt_attack, prompt_attack, harm)
            fpr = float(flagged[~is_attack].mean())
            candidate = (float(flagged[is_attack].mean()), -fpr, prompt_attack, harm)
            if fpr <= budget and (best is None or candidate[:2] > best[:2]):
                best = candidate
    recall, negative_fpr, prompt_attack, harm = best
    return {
        "reference_threshold": REFERENCE_THRESHOLD,
        "reference": {"attack_recall": round(reference_recall, 4), "benign_fpr": round(budget, 4)},
        "prompt_attacks": prompt_attack,
        "harm": harm,
        "attack_recall": round(recall, 4),
        "benign_fpr": round(-negative_fpr, 4),
    }


def band_search(oof_ngram: np.ndarray, oof_combined: np.ndarray, classes: list[str], rows: list[Example]) -> list:
    """Out of fold, each candidate cascade band's share of rows embedded and attack recall (all, harmful requests)
    at the threshold that holds benign false positives to 2 %: the record DEFAULT_EMBED_BAND was chosen from."""
    benign = classes.index(BENIGN)
    is_attack, is_prompt_attack = attack_masks(rows)
    is_harm = is_attack & ~is_prompt_attack
    found = []
    for low in BAND_LOWS:
        for high in BAND_HIGHS:
            proba, embedded = cascade(oof_ngram, oof_combined, benign, (low, high))
            score = 1.0 - proba[:, benign]
            threshold = np.quantile(score[~is_attack], 0.98)
            found.append(
                {
                    "band": [low, high],
                    "embedded_share": round(float(embedded.mean()), 4),
                    "attack_recall": round(float((score[is_attack] >= threshold).mean()), 4),
                    "harm_recall": round(float((score[is_harm] >= threshold).mean()), 4),
                }
            )
    return found


def make_embedding_head() -> LogisticRegression:
    return LogisticRegression(C=EMBEDDING_C, max_iter=3000, random_state=SEED)


def make_neighbours(vectors: np.ndarray, labels: np.ndarray, classes: list[str]) -> NearestNeighbours:
    indices = np.array([classes.index(label) for label in labels])
    return NearestNeighbours(
        vectors, indices, len(classes), NEIGHBOURS_K, NEIGHBOURS_TEMPERATURE, NEIGHBOURS_PRIOR_VOTES
    )


def make_combiner() -> LogisticRegression:
    # Unweighted on purpose: the members are class-balanced already; the combiner learns the real mix, so its
    # probabilities are calibrated to it.
    return LogisticRegression(C=1.0, max_iter=5000, random_state=SEED)


def evaluate_everyday_holdout(model: IntentModel, texts: list[str]) -> dict:
    """False-positive rate on the held-out everyday prompts (all benign, never trained on) per policy threshold."""
    score = np.array([sum(p.values()) for p in model.probabilities(texts)])
    return {
        "n": len(texts),
        **{str(t): round(float((score >= t).mean()), 4) for t in EVERYDAY_THRESHOLDS},
        "max_attack_score": round(float(score.max()), 4),
    }


def _seed_record(path: Path, source: str) -> dict:
    return {
        "path": str(path.relative_to(sources.SEED_DIR.parents[2])),
        "source": source,
        "licence": "project licence (team-written)",
    }


def train(out_dir: Path, cache_dir: Path, embedding_dir: Path, log=print) -> dict:
    """Fit the members out of fold, the combiner on their out-of-fold probabilities, then the members on all
    rows; save the three models and the provenance with the out-of-fold metrics."""
    started = time.perf_counter()
    rows = load_all(cache_dir)
    holdout = load_everyday_holdout()
    leaked = {t.lower() for t in holdout} & {r.text.lower() for r in rows}
    if leaked:
        raise ValueError(f"everyday hold-out prompts are also training rows: {sorted(leaked)}")
    texts = [r.text for r in rows]
    labels = np.array([r.label for r in rows])
    weights = sample_weights(list(labels))
    classes = sorted(set(labels))
    embedder = SentenceEmbedder(embedding_dir)
    embeddings = embedder.embed(texts)
    log(f"intent: {len(rows)} rows embedded in {time.perf_counter() - started:.0f} s")
    splits = folds(rows)

    def ngram_fold(train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
        model = make_ngram_model()
        model.fit([texts[i] for i in train_idx], labels[train_idx], classifier__sample_weight=weights[train_idx])
        return model.predict_proba([texts[i] for i in test_idx])

    def embedding_fold(train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
        head = make_embedding_head().fit(embeddings[train_idx], labels[train_idx], sample_weight=weights[train_idx])
        return head.predict_proba(embeddings[test_idx])

    def neighbours_fold(train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
        return make_neighbours(embeddings[train_idx], labels[train_idx], classes).predict_proba(embeddings[test_idx])

    oof_ngram = out_of_fold(ngram_fold, len(rows), len(classes), splits)
    oof_embedding = out_of_fold(embedding_fold, len(rows), len(classes), splits)
    oof_neighbours = out_of_fold(neighbours_fold, len(rows), len(classes), splits)
    features = stack_features(oof_ngram, oof_embedding, oof_neighbours)

    def combiner_fold(train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
        return make_combiner().fit(features[train_idx], labels[train_idx]).predict_proba(features[test_idx])

    oof_combined = out_of_fold(combiner_fold, len(rows), len(classes), splits)
    oof_cascade, embedded = cascade(oof_ngram, oof_combined, classes.index(BENIGN), DEFAULT_EMBED_BAND)
    combiner = make_combiner().fit(features, labels)
    ngram = make_ngram_model().fit(texts, labels, classifier__sample_weight=weights)
    embedding_head = make_embedding_head().fit(embeddings, labels, sample_weight=weights)
    neighbours = make_neighbours(embeddings, labels, classes)
    model = IntentModel(ngram, embedding_head, neighbours, combiner, embedder, provenance={})
    metrics = {
        "method": f"out-of-fold over {FOLDS} StratifiedGroupKFold folds (seed {SEED})",
        "ensemble": evaluate(oof_combined, classes, rows),
        "cascade": {
            "embed_band": list(DEFAULT_EMBED_BAND),
            "embedded_share": round(float(embedded.mean()), 4),
            **evaluate(oof_cascade, classes, rows),
            "group_thresholds": group_thresholds(oof_cascade, classes, rows),
            "band_search": band_search(oof_ngram, oof_combined, classes, rows),
        },
        "ngram_member": evaluate(oof_ngram, classes, rows),
        "embedding_member": evaluate(oof_embedding, classes, rows),
        "neighbours_member": evaluate(oof_neighbours, classes, rows),
        "everyday_holdout_fpr": evaluate_everyday_holdout(model, holdout),
    }
    at_two = metrics["ensemble"]["at_benign_fpr"]["0.02"]
    log(
        f"intent: out of fold at 2 % benign FPR: ensemble recall {at_two['attack_recall']} "
        f"(as served, cascade embedding {metrics['cascade']['embedded_share']:.0%} of rows: "
        f"{metrics['cascade']['at_benign_fpr']['0.02']['attack_recall']}) "
        f"(n-gram {metrics['ngram_member']['at_benign_fpr']['0.02']['attack_recall']}, "
        f"embedding {metrics['embedding_member']['at_benign_fpr']['0.02']['attack_recall']}, "
        f"neighbours {metrics['neighbours_member']['at_benign_fpr']['0.02']['attack_recall']}); "
        f"everyday hold-out FPR {metrics['everyday_holdout_fpr']}; "
        f"group thresholds {metrics['cascade']['group_thresholds']}"
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, member in ((NGRAM_FILE, ngram), (EMBEDDING_HEAD_FILE, embedding_head), (COMBINER_FILE, combiner)):
        joblib.dump(member, out_dir / name, compress=3)
    neighbours.save(out_dir / NEIGHBOURS_FILE)
    provenance = {
        **build_info(),
        "artefact": (
            "intent ensemble: TF-IDF n-gram LR + MiniLM-embedding LR + MiniLM nearest training rows, "
            "stacked by a multinomial LR"
        ),
        "neighbours": {
            "k": NEIGHBOURS_K,
            "temperature": NEIGHBOURS_TEMPERATURE,
            "prior_votes": NEIGHBOURS_PRIOR_VOTES,
            "stored_rows": len(rows),
        },
        "classes": classes,
        "seed": SEED,
        "sklearn_version": sklearn.__version__,
        "embedding": {"path": embedding_dir.name, "model_sha256": embedder.model_sha256},
        "packages": [p.record() for p in (*sources.INTENT_PACKAGES, *sources.EMBEDDING_PACKAGES)],
        "team_seed_files": [
            _seed_record(sources.INTENT_SEED, "safeserve-seed"),
            _seed_record(sources.BENIGN_EVERYDAY_SEED, "safeserve-seed-everyday"),
            _seed_record(sources.HARM_REQUESTS_SEED, "safeserve-seed-harm"),
        ],
        "everyday_holdout_file": {
            **_seed_record(sources.BENIGN_EVERYDAY_HOLDOUT, "safeserve-seed-everyday-holdout"),
            "used_for": "measuring only (metrics.everyday_holdout_fpr), never trained on",
        },
        "decontamination": "rows whose text matches an evaluation text (eval_data.contamination_keys) are dropped",
        "rows_per_source": dict(sorted(Counter(r.source for r in rows).items())),
        "rows_per_category": dict(sorted(Counter(labels.tolist()).items())),
        "training_data_sha256": sha256_bytes(to_csv_bytes(rows)),
        "metrics": metrics,
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")
    return provenance
