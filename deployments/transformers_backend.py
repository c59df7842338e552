"""Generation with Hugging Face transformers: a local directory, a GGUF file inside one, or a hub id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from classifiers.paths import resolve_model_path
from deployments.config import GeneratorConfig
from deployments.devices import pick_device
from deployments.generation import Completion, SamplingParams
from deployments.logs import get_logger

logger = get_logger("generator")

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class _StopWhenSet(StoppingCriteria):
    """Lets a consumer that went away (a closed stream) stop the generation thread."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return self.event.is_set()


class TransformersBackend:
    def __init__(self, config: GeneratorConfig) -> None:
        local = resolve_model_path(config.model)
        source = str(local) if local.exists() else config.model
        extra = {"gguf_file": config.gguf_file} if config.gguf_file else {}
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.device = pick_device(config.device)
        dtype = "auto" if config.dtype == "auto" else _DTYPES[config.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra).to(self.device).eval()
        logger.info("loaded %s on %s", Path(source).name if local.exists() else source, self.device)

    def _inputs(self, messages: list[dict[str, str]]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {name: tensor.to(self.device) for name, tensor in encoded.items()}

    def _generate_kwargs(self, params: SamplingParams) -> dict:
        kwargs: dict = {"max_new_tokens": params.max_tokens, "pad_token_id": self.tokenizer.eos_token_id}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def generate(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion:
        inputs = self._inputs(messages)
        prompt_tokens = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self._generate_kwargs(params))
        new_tokens = output[0, prompt_tokens:]
        finished = bool(len(new_tokens)) and new_tokens[-1].item() == self.tokenizer.eos_token_id
        return Completion(
            text=self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip(),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(new_tokens),
            finish_reason="stop" if finished or len(new_tokens) < params.max_tokens else "length",
        )

    def stream(self, messages: list[dict[str, str]], params: SamplingParams) -> Iterator[str]:
        inputs = self._inputs(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        kwargs = {
            **inputs,
            **self._generate_kwargs(params),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopWhenSet(stop)]),
        }
        thread = threading.Thread(target=self._generate_quietly, kwargs=kwargs, daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.set()
            thread.join()

    def _generate_quietly(self, **kwargs) -> None:
        with torch.inference_mode():
            self.model.generate(**kwargs)
