"""Production text classifiers as Moderator members: a Hugging Face text-classification directory or an ONNX
export of one, each label mapped onto the taxonomy.

Both read a label's probability with the activation the model was trained with: sigmoid for multi-label heads
(Detoxify's, most toxicity models), softmax for single-label ones (a `toxic`/`non-toxic` pair, ToxiGen's
RoBERTa). Labels missing from `labels` are read but not reported (a `non-toxic` or `neutral` label), so a
config says which labels count as which category, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from classifiers.taxonomy import Category

Activation = Literal["auto", "sigmoid", "softmax"]


def _activate(logits: np.ndarray, activation: str) -> np.ndarray:
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _mapped(probabilities: np.ndarray, names: list[str], labels: dict[str, Category]) -> list[dict[Category, float]]:
    columns = [(i, labels[name]) for i, name in enumerate(names) if name in labels]
    out = []
    for row in probabilities:
        scores: dict[Category, float] = {}
        for i, category in columns:
            scores[category] = max(scores.get(category, 0.0), float(row[i]))
        out.append(scores)
    return out


def _check_labels(names: list[str], labels: dict[str, Category], where: str) -> None:
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ValueError(f"{where} has no labels {unknown}; its labels are {names}")


class HFTextClassifier:
    """A local `AutoModelForSequenceClassification` directory (config.json with `id2label`, weights, tokenizer)."""

    def __init__(
        self,
        path: Path,
        labels: dict[str, Category],
        device: str = "cpu",
        activation: Activation = "auto",
        max_length: int = 512,
        batch_size: int = 16,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
        self._device = device
        config = self._model.config
        self.names = [config.id2label[i] for i in range(config.num_labels)]
        _check_labels(self.names, labels, str(path))
        if activation == "auto":
            activation = "sigmoid" if config.problem_type == "multi_label_classification" else "softmax"
        self._activation = activation
        self._labels = dict(labels)
        self._max_length = max_length
        self._batch_size = batch_size

    def probabilities(self, texts: list[str]) -> np.ndarray:
        out = []
        with self._torch.inference_mode():
            for start in range(0, len(texts), self._batch_size):
                encoded = self._tokenizer(
                    texts[start : start + self._batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self._max_length,
                    return_tensors="pt",
                ).to(self._device)
                logits = self._model(**encoded).logits.float().cpu().numpy()
                out.append(_activate(logits, self._activation))
        return np.concatenate(out) if out else np.zeros((0, len(self.names)))

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        return _mapped(self.probabilities(texts), self.names, self._labels)


class OnnxTextClassifier:
    """An ONNX sequence classifier: a directory with `model.onnx` (inputs input_ids, attention_mask and optionally
    token_type_ids; first output the logits), `tokenizer.json`, and `labels.json` (the output names in order) or
    a config.json with `id2label`."""

    def __init__(
        self,
        path: Path,
        labels: dict[str, Category],
        activation: Literal["sigmoid", "softmax"] = "sigmoid",
        max_length: int = 512,
        threads: int = 1,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        path = Path(path)
        self.names = self._label_names(path)
        _check_labels(self.names, labels, str(path))
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._activation = activation
        self._labels = dict(labels)

    @staticmethod
    def _label_names(path: Path) -> list[str]:
        if (path / "labels.json").is_file():
            return [str(name) for name in json.loads((path / "labels.json").read_text())]
        if (path / "config.json").is_file():
            id2label = json.loads((path / "config.json").read_text()).get("id2label") or {}
            return [id2label[key] for key in sorted(id2label, key=int)]
        raise FileNotFoundError(f"{path} has neither labels.json nor a config.json with id2label")

    def probabilities(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.names)))
        encodings = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        logits = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        if logits.shape[1] != len(self.names):
            raise ValueError(f"the ONNX model gives {logits.shape[1]} outputs for {len(self.names)} labels")
        return _activate(logits.astype(np.float64), self._activation)

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        return _mapped(self.probabilities(texts), self.names, self._labels)
