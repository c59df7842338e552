"""Score text toxicity with the real Detoxify library from a local checkpoint, mapped onto our taxonomy."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from detoxify import Detoxify

from classifiers.taxonomy import Category

CHECKPOINT_FILE = "toxicity.ckpt"
HF_SUBDIR = "hf"
PROVENANCE_FILE = "provenance.json"

# Detoxify's output names (it renames toxic/severe_toxic/identity_hate) and the Jigsaw names, to our categories.
CLASS_TO_CATEGORY: dict[str, Category] = {
    "toxicity": Category.HARASSMENT,
    "toxic": Category.HARASSMENT,
    "severe_toxicity": Category.HARASSMENT,
    "severe_toxic": Category.HARASSMENT,
    "insult": Category.HARASSMENT,
    "threat": Category.VIOLENCE,
    "identity_attack": Category.HATE,
    "identity_hate": Category.HATE,
    "obscene": Category.PROFANITY,
    "sexual_explicit": Category.SEXUAL,  # only in Detoxify's "unbiased" models
}
# The "unbiased" models also predict which identity a comment mentions (the Jigsaw Unintended Bias subgroups):
# that is not a harm, so those outputs are read and not reported.
IDENTITY_CLASSES = frozenset(
    {
        "male",
        "female",
        "homosexual_gay_or_lesbian",
        "christian",
        "jewish",
        "muslim",
        "black",
        "white",
        "psychiatric_or_mental_illness",
    }
)


def _model_type(checkpoint: Path) -> str:
    loaded = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    return str(loaded["config"]["arch"]["args"]["model_type"])


class DetoxifyScorer:
    """A Detoxify model loaded offline from `checkpoint` (a Detoxify .ckpt) and `config_dir` (HF config.json +
    tokenizer files).

    Detoxify 0.5.4 always calls `BertConfig.from_pretrained(config.arch.args.model_type)`, which needs the hub
    when model_type is a hub id. So when model_type is not an existing local directory, as in a released
    Detoxify checkpoint ("bert-base-uncased") or a SafeServe checkpoint whose models dir was moved, the checkpoint
    is re-saved once to a temporary file with model_type pointing at config_dir and loaded from there. For a
    released checkpoint, config_dir must then hold that model's config and tokenizer (e.g. a local copy of
    bert-base-uncased's config.json, vocab.txt, tokenizer files).
    """

    def __init__(self, checkpoint: Path, config_dir: Path, device: str = "cpu") -> None:
        checkpoint, config_dir = Path(checkpoint), Path(config_dir)
        if not (config_dir / "config.json").is_file():
            raise FileNotFoundError(f"{config_dir} has no config.json")
        if Path(_model_type(checkpoint)).is_dir():
            self._detoxify = self._load(checkpoint, config_dir, device)
        else:
            self._detoxify = self._load_rewritten(checkpoint, config_dir, device)
        self.class_names: list[str] = list(self._detoxify.class_names)
        unmapped = set(self.class_names) - set(CLASS_TO_CATEGORY) - IDENTITY_CLASSES
        if unmapped:
            raise ValueError(f"no category mapping for Detoxify classes {sorted(unmapped)}")

    @staticmethod
    def _load(checkpoint: Path, config_dir: Path, device: str) -> Detoxify:
        return Detoxify(
            model_type="original", checkpoint=str(checkpoint), huggingface_config_path=str(config_dir), device=device
        )

    @classmethod
    def _load_rewritten(cls, checkpoint: Path, config_dir: Path, device: str) -> Detoxify:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=False)
        loaded["config"]["arch"]["args"]["model_type"] = str(config_dir.resolve())
        handle, temp_path = tempfile.mkstemp(suffix=".ckpt")
        try:
            with os.fdopen(handle, "wb") as out:
                torch.save(loaded, out)
            del loaded
            return cls._load(Path(temp_path), config_dir, device)
        finally:
            os.unlink(temp_path)

    def raw_predict(self, texts: list[str]) -> list[dict[str, float]]:
        """Per text, Detoxify's scores under Detoxify's class names (toxicity, severe_toxicity, obscene, threat,
        insult, identity_attack)."""
        if not texts:
            return []
        results = self._detoxify.predict(list(texts))
        # Detoxify squeezes its output, so a batch of one gives a float per class rather than a list.
        columns = {name: [results[name]] if len(texts) == 1 else results[name] for name in self.class_names}
        return [{name: float(columns[name][i]) for name in self.class_names} for i in range(len(texts))]

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        """Per text, the max Detoxify score over the classes that map to each of our categories."""
        out = []
        for raw in self.raw_predict(texts):
            scores: dict[Category, float] = {}
            for name, score in raw.items():
                if name in IDENTITY_CLASSES:
                    continue
                category = CLASS_TO_CATEGORY[name]
                scores[category] = max(scores.get(category, 0.0), score)
            out.append(scores)
        return out
