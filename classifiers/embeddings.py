"""Sentence embeddings from an ONNX export of a BERT-family encoder (all-MiniLM-L6-v2 by default).

The encoder's token states are mean-pooled over the attention mask and L2-normalised, as sentence-transformers
does for all-MiniLM-L6-v2, so a classifier head trained on these vectors matches the published model. The
default encoder is int8 with activations quantised per run (classifiers/training/embedding_model.py), so each
text is a run of its own: its vector does not depend on the texts that arrive with it.

An embedding directory holds `model.onnx` and `tokenizer.json` (the `tokenizers` library's format).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from classifiers.assets import sha256_file

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 128  # all-MiniLM-L6-v2 was trained on 128-token windows
# A longer text keeps its first HEAD_TOKENS tokens and its end: a long prompt usually puts its request after the
# material it is about (a document, then "now write ..."), so cutting to the start alone dropped the request.
HEAD_TOKENS = 32


class SentenceEmbedder:
    """Texts to unit vectors on CPU through onnxruntime.

    Each run is one text on one thread, and a batch runs `threads` texts at a time (default: one per core). For
    one short sequence a second intra-op thread mostly waits, while two texts side by side keep both cores busy:
    on this project's 2-core CPU that embeds about half as many texts again a second (docs/evaluation.md, Speed).
    """

    def __init__(self, directory: Path, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        directory = Path(directory)
        self.model_sha256 = sha256_file(directory / MODEL_FILE)
        self._tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.threads = threads or os.cpu_count() or 1
        # onnxruntime releases the GIL during a run and allows concurrent runs of one session
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="embed") if self.threads > 1 else None
        self._session = onnxruntime.InferenceSession(
            str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """An (n, dimension) float32 array, one run per text (no padding, and the same vector whatever the batch)."""
        ids = [head_and_tail(encoding.ids) for encoding in self._tokenizer.encode_batch(texts)]
        runs = self._pool.map(self._embed_one, ids) if self._pool and len(ids) > 1 else map(self._embed_one, ids)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, vector in enumerate(runs):
            out[row] = vector
        return out

    def _embed_one(self, ids: list[int]) -> np.ndarray:
        feeds = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
            "token_type_ids": np.zeros((1, len(ids)), dtype=np.int64),
        }
        states = self._session.run(None, {name: value for name, value in feeds.items() if name in self._inputs})[0]
        pooled = states[0].mean(axis=0)  # no padding in a run of one text: the mask's mean is the plain mean
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def head_and_tail(ids: list[int], limit: int = MAX_TOKENS, head: int = HEAD_TOKENS) -> list[int]:
    """At most `limit` token ids: the first `head` (from [CLS]) and the last `limit - head` (to [SEP])."""
    return ids if len(ids) <= limit else ids[:head] + ids[len(ids) - (limit - head) :]
