"""The artefact build: cached by recipe, atomic, with provenance."""

from __future__ import annotations

import json

from classifiers.assets import sha256_file
from classifiers.models_build import (
    ARTEFACTS,
    GENERATOR_GGUF,
    GENERATOR_HF_DIR,
    INTENT_DIR,
    STAMP,
    TOXICITY_CKPT,
    TOXICITY_DIR,
    TOXICITY_HF_DIR,
    build_all,
)


def test_second_build_is_cached(models_dir, cache_dir):
    stamps = {name: (models_dir / a.directory / STAMP).stat().st_mtime_ns for name, a in ARTEFACTS.items()}
    paths = build_all(models_dir, cache_dir, log=lambda message: None)
    assert {name: (models_dir / a.directory / STAMP).stat().st_mtime_ns for name, a in ARTEFACTS.items()} == stamps
    assert paths == {
        "generator": models_dir / GENERATOR_HF_DIR,
        "intent": models_dir / INTENT_DIR,
        "toxicity": models_dir / TOXICITY_DIR,
    }


def test_artefacts_are_in_place(models_dir):
    assert (models_dir / GENERATOR_GGUF).stat().st_size > 90_000_000
    assert (models_dir / GENERATOR_HF_DIR / "model.safetensors").stat().st_size > 500_000_000
    assert (models_dir / GENERATOR_HF_DIR / "tokenizer.json").is_file()
    assert (models_dir / TOXICITY_CKPT).is_file()
    assert (models_dir / TOXICITY_HF_DIR / "config.json").is_file()
    assert (models_dir / TOXICITY_HF_DIR / "vocab.txt").is_file()
    assert not [p for p in models_dir.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_intent_provenance(models_dir):
    provenance = json.loads((models_dir / INTENT_DIR / "provenance.json").read_text())
    for key in (
        "packages",
        "rows_per_source",
        "rows_per_category",
        "training_data_sha256",
        "sklearn_version",
        "built_at",
        "test_metrics",
        "classes",
        "seed",
    ):
        assert key in provenance, key
    assert all({"name", "version", "licence"} <= set(p) for p in provenance["packages"])
    metrics = provenance["test_metrics"]
    assert metrics["attack_recall"] >= 0.9
    assert metrics["benign_fpr"] <= 0.05


def test_toxicity_provenance(models_dir):
    provenance = json.loads((models_dir / TOXICITY_DIR / "provenance.json").read_text())
    for key in ("packages", "versions", "training_data_sha256", "test_metrics", "built_at", "rows_per_source"):
        assert key in provenance, key
    assert provenance["test_metrics"]["per_class"]["toxic"]["roc_auc"] >= 0.85


def test_generator_provenance_matches_the_file(models_dir):
    provenance = json.loads((models_dir / GENERATOR_GGUF).with_name("provenance.json").read_text())
    assert provenance["model"]["licence"] == "Apache-2.0"
    assert provenance["sha256"] == sha256_file(models_dir / GENERATOR_GGUF)
