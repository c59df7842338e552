"""Train the Moderator's toxicity model (classifiers.toxicity).

- The n-gram model: word 1-2-gram TF-IDF and a logistic regression, on the train split of the 184k packaged
  comments and every other toxicity source (`toxicity_data.training_rows`), about 40 s on two cores.
- The stacked head: a logistic regression over the all-MiniLM-L6-v2 vector and the n-gram model's log-odds, on
  about 12,800 train-split comments the n-gram model never saw, so it learns how far to trust the n-gram model
  on text that model did not memorise (about 50 s, most of it embedding them).

Every figure in the provenance is measured on the test split of the comments, which nothing trains on.
"""

from __future__ import annotations

import json
import random
import time
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from classifiers.embeddings import SentenceEmbedder
from classifiers.toxicity import HEAD_FILE, NGRAM_FILE, PROVENANCE_FILE, ToxicityModel, head_features
from classifiers.training import sources
from classifiers.training.eval_data import contamination_keys
from classifiers.training.provenance import build_info, sha256_bytes
from classifiers.training.splits import TEST, split_of
from classifiers.training.toxicity_data import ToxRow, comment_rows, to_jsonl_bytes, training_rows

SEED = 20261207
NGRAM = {"ngram_range": (1, 2), "min_df": 3, "max_features": 200_000, "sublinear_tf": True}
NGRAM_C = 4.0
HEAD_C = 1.0
METRIC_ROWS = 2000  # test comments the head is measured on (embedding all 18,000 would double the build)
FPR = 0.01


def _seed_everything() -> None:
    random.seed(SEED)
    np.random.seed(SEED)


def train_ngram(rows: list[ToxRow]) -> dict:
    vectorizer = TfidfVectorizer(dtype=np.float32, **NGRAM)
    features = vectorizer.fit_transform([r.text for r in rows])
    regression = LogisticRegression(C=NGRAM_C, solver="liblinear", max_iter=1000)
    regression.fit(features, [r.toxic for r in rows])
    return {
        "vectorizer": vectorizer,
        "coef": regression.coef_[0].astype(np.float64),
        "intercept": regression.intercept_,
    }


def train_head(ngram: ToxicityModel, embedder: SentenceEmbedder, rows: list[ToxRow]) -> LogisticRegression:
    texts = [r.text for r in rows]
    features = head_features(embedder.embed(texts), ngram.score(texts))
    return LogisticRegression(C=HEAD_C, max_iter=3000).fit(features, [r.toxic for r in rows])


def at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float = FPR) -> dict:
    """ROC AUC, and recall at the threshold that flags `fpr` of the negatives."""
    threshold = float(np.quantile(scores[labels == 0], 1.0 - fpr))
    return {
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        f"recall_at_{fpr:.0%}_fpr": round(float(np.mean(scores[labels == 1] > threshold)), 4),
        "threshold": round(threshold, 4),
        "positives": int(labels.sum()),
        "negatives": int((labels == 0).sum()),
    }


def test_comments(cache_dir: Path) -> list[ToxRow]:
    return [row for row in comment_rows(cache_dir) if split_of(row.text) == TEST]


def train(out_dir: Path, cache_dir: Path, embedding_dir: Path, log=print) -> dict:
    started = time.perf_counter()
    _seed_everything()
    rows = training_rows(cache_dir, excluded=contamination_keys(cache_dir))
    embedder = SentenceEmbedder(embedding_dir)

    ngram = train_ngram(rows.ngram)
    joblib.dump(ngram, out_dir / NGRAM_FILE)
    provenance: dict = {"sklearn_version": sklearn.__version__, "embedding": {"model_sha256": embedder.model_sha256}}
    n_gram_only = ToxicityModel(ngram, None, None, provenance)
    log(f"toxicity: n-gram model on {len(rows.ngram)} rows, {time.perf_counter() - started:.0f} s")
    head = train_head(n_gram_only, embedder, rows.head)
    joblib.dump(head, out_dir / HEAD_FILE)
    log(f"toxicity: stacked head on {len(rows.head)} rows, {time.perf_counter() - started:.0f} s")

    test = test_comments(cache_dir)
    labels = np.array([r.toxic for r in test])
    ngram_scores = n_gram_only.score([r.text for r in test])
    sample = np.random.default_rng(SEED).choice(len(test), size=min(METRIC_ROWS, len(test)), replace=False)
    model = ToxicityModel(ngram, head, embedder, provenance)
    sample_texts = [test[i].text for i in sample]
    stacked = model.refine(sample_texts, ngram_scores[sample])
    metrics = {
        "ngram": at_fpr(labels, ngram_scores),
        "ngram_on_the_head_sample": at_fpr(labels[sample], ngram_scores[sample]),
        "stacked_head_on_the_head_sample": at_fpr(labels[sample], stacked),
        "by_source": {
            source: at_fpr(labels[mask], ngram_scores[mask])
            for source in ("comments", "tweets")
            if (mask := np.array([r.source == source for r in test])).any()
        },
    }
    log(
        f"toxicity: test comments ROC AUC {metrics['ngram']['roc_auc']}, recall at 1 % FPR "
        f"{metrics['ngram']['recall_at_1%_fpr']} (n-gram); built in {time.perf_counter() - started:.0f} s"
    )
    provenance.update(
        {
            **build_info(),
            "artefact": "toxicity model: word n-gram TF-IDF LR, and a stacked LR over all-MiniLM-L6-v2 vectors and "
            "the n-gram log-odds (classifiers/toxicity.py)",
            "seed": SEED,
            "hyperparameters": {"ngram": {**NGRAM, "C": NGRAM_C}, "head": {"C": HEAD_C}},
            "packages": [p.record() for p in sources.TOXICITY_PACKAGES],
            "team_seed_file": {
                "path": str(sources.TOXICITY_SEED.relative_to(sources.SEED_DIR.parents[2])),
                "licence": "project licence (team-written)",
            },
            "rows": {
                "ngram": _by_source(rows.ngram),
                "head": _by_source(rows.head),
            },
            "training_data_sha256": sha256_bytes(to_jsonl_bytes(rows.all)),
            "split": "comments by hash of their folded text (classifiers/training/splits.py): train 80 %, dev 10 %, "
            "test 10 %; only train is trained on, and no evaluation text of any set",
            "test_metrics": metrics,
            "versions": {"scikit-learn": sklearn.__version__, "onnxruntime": version("onnxruntime")},
            "train_seconds": round(time.perf_counter() - started, 1),
        }
    )
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def _by_source(rows: list[ToxRow]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = out.setdefault(row.source, {"toxic": 0, "clean": 0})
        counts["toxic" if row.toxic else "clean"] += 1
    return dict(sorted(out.items()))
