"""Generation with Hugging Face transformers: a local directory, a GGUF file, or a hub id.

Constrained decoding: a request's `banned` phrases (the Generator's config and the output policy's) become
`bad_words_ids` (transformers' NoBadWordsLogitsProcessor sets the logit of a phrase's last token to -inf whenever
the tokens before it were just generated), so the model cannot emit them in the spellings tokenised here: as is,
after a space, capitalised, title case and upper case. A
phrase tokenised differently inside other text (a rare BPE merge across its boundary) is the Moderator's to
catch. Stop sequences end generation (`stop_strings`) and are cut from the text, as OpenAI does.

Against loops (`repetition_penalty`, `no_repeat_ngram_size`): both read only the answer's own tokens. transformers'
built-in options would also read the prompt, so the question's words and the chat template's end-of-turn token (a
small model's way to stop) would be penalised or banned in the answer.

No tool use: a request's `tools` are not shown to the model (the default SmolLM2's chat template has no tools),
and tool results reach it as labelled user turns. A model that wrote tool calls as text would need them parsed
into `tool_calls` here first, or they would slip past the capability gate as plain content.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessor,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from classifiers.paths import resolve_model_path
from deployments.config import GeneratorConfig
from deployments.devices import pick_device
from deployments.generation import Completion, Message, SamplingParams, StreamEnd
from deployments.logs import get_logger

logger = get_logger("generator")

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class _StopWhenSet(StoppingCriteria):
    """Lets a consumer that went away (a closed stream) stop the generation thread."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return self.event.is_set()


class _NoRepeatNGramInAnswer(LogitsProcessor):
    """transformers' no-repeat n-gram ban over the tokens after the prompt only (`width`: the padded prompt)."""

    def __init__(self, ngram_size: int, width: int) -> None:
        self.ban = NoRepeatNGramLogitsProcessor(ngram_size)
        self.width = width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return self.ban(input_ids[:, self.width :], scores)


class TransformersBackend:
    tool_use = False
    runs_model = True  # the Generator batches concurrent requests for it

    def __init__(self, config: GeneratorConfig) -> None:
        local, gguf_file = resolve_model_path(config.model), config.gguf_file
        if local.is_file() and local.suffix == ".gguf":  # `model` names a GGUF file itself
            local, gguf_file = local.parent, local.name
        source = str(local) if local.exists() else config.model
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.device = pick_device(config.device)
        dtype = "auto" if config.dtype == "auto" else _DTYPES[config.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra).to(self.device).eval()
        self._bad_words_ids: dict[tuple[str, ...], list[list[int]]] = {}  # per set of banned phrases
        logger.info("loaded %s on %s", Path(source).name if local.exists() else source, self.device)

    def _inputs(self, conversations: list[list[Message]]) -> dict[str, torch.Tensor]:
        """Token ids of one or more conversations, left-padded so their answers start in the same column."""
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        encoded = self.tokenizer.apply_chat_template(
            conversations, add_generation_prompt=True, return_tensors="pt", return_dict=True, padding=True
        )
        return {name: tensor.to(self.device) for name, tensor in encoded.items()}

    def _generate_kwargs(self, params: SamplingParams, width: int) -> dict:
        """`width`: the prompt's length in tokens (padded), where the answer starts."""
        kwargs: dict = {"max_new_tokens": params.max_tokens, "pad_token_id": self.tokenizer.eos_token_id}
        processors = []
        if params.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty, prompt_ignore_length=width))
        if params.no_repeat_ngram_size:
            processors.append(_NoRepeatNGramInAnswer(params.no_repeat_ngram_size, width))
        if processors:
            kwargs["logits_processor"] = LogitsProcessorList(processors)
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.banned:
            if params.banned not in self._bad_words_ids:
                self._bad_words_ids[params.banned] = banned_token_sequences(self.tokenizer, params.banned)
            kwargs["bad_words_ids"] = self._bad_words_ids[params.banned]
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        return kwargs

    def generate(self, messages: list[Message], params: SamplingParams) -> Completion:
        return self.generate_batch([messages], [params])[0]

    def generate_batch(self, conversations: list[list[Message]], params: list[SamplingParams]) -> list[Completion]:
        """Answers to several conversations: those that sample alike (greedy, or the same temperature, top_p
        stops, bans and repetition settings without a seed) run as one padded batch; each keeps its own max_tokens."""
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(params):
            alike = (p.temperature, p.top_p, p.stop, p.banned, p.repetition_penalty, p.no_repeat_ngram_size)
            key = alike if p.seed is None or p.temperature == 0 else ("seeded", i)
            groups.setdefault(key, []).append(i)
        results: list[Completion | None] = [None] * len(conversations)
        for indices in groups.values():
            done = self._generate_together([conversations[i] for i in indices], [params[i] for i in indices])
            for i, completion in zip(indices, done, strict=True):
                results[i] = completion
        return results

    def _generate_together(self, conversations: list[list[Message]], params: list[SamplingParams]) -> list[Completion]:
        inputs = self._inputs(conversations)
        width = inputs["input_ids"].shape[1]
        longest = replace(params[0], max_tokens=max(p.max_tokens for p in params))
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self._generate_kwargs(longest, width))
        completions = []
        for row, p in enumerate(params):
            new_tokens = output[row, width:][: p.max_tokens].tolist()
            eos = self.tokenizer.eos_token_id
            finished = eos in new_tokens
            if finished:
                new_tokens = new_tokens[: new_tokens.index(eos) + 1]
            text, stopped = cut_at_stop(self.tokenizer.decode(new_tokens, skip_special_tokens=True), p.stop)
            completions.append(
                Completion(
                    text=text.strip(),
                    prompt_tokens=int(inputs["attention_mask"][row].sum()),
                    completion_tokens=len(new_tokens),
                    finish_reason="stop" if finished or stopped or len(new_tokens) < p.max_tokens else "length",
                )
            )
        return completions

    def stream(self, messages: list[Message], params: SamplingParams) -> Iterator[str | StreamEnd]:
        inputs = self._inputs([messages])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        kwargs = {
            **inputs,
            **self._generate_kwargs(params, inputs["input_ids"].shape[1]),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopWhenSet(stop)]),
        }
        output: list[torch.Tensor] = []
        thread = threading.Thread(target=self._generate_quietly, args=(output,), kwargs=kwargs, daemon=True)
        thread.start()
        try:
            stopped = yield from without_stops((piece for piece in streamer if piece), params.stop)
        finally:
            stop.set()
            thread.join()
        new_tokens = output[0][0, inputs["input_ids"].shape[1] :].tolist() if output else []
        ran_out = len(new_tokens) >= params.max_tokens and self.tokenizer.eos_token_id not in new_tokens
        yield StreamEnd("length" if ran_out and not stopped else "stop")

    def _generate_quietly(self, output: list[torch.Tensor], **kwargs) -> None:
        with torch.inference_mode():
            output.append(self.model.generate(**kwargs))


def banned_token_sequences(tokenizer, phrases: tuple[str, ...]) -> list[list[int]]:
    """Token id sequences of each phrase in its common spellings, for `bad_words_ids`."""
    sequences: list[list[int]] = []
    for phrase in phrases:
        for variant in {phrase, phrase.capitalize(), phrase.title(), phrase.upper(), phrase.lower()}:
            for text in (variant, f" {variant}"):
                ids = tokenizer.encode(text, add_special_tokens=False)
                if ids and ids not in sequences:
                    sequences.append(ids)
    return sequences


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to the first stop sequence (excluded), and whether one was found."""
    positions = [i for i in (text.find(stop) for stop in stops) if i >= 0]
    return (text[: min(positions)], True) if positions else (text, False)


def without_stops(pieces: Iterator[str], stops: tuple[str, ...]) -> Generator[str, None, bool]:
    """Pieces up to the first stop sequence: text that could still begin one is held until it cannot. Returns
    whether a stop sequence ended the text."""
    if not stops:
        yield from pieces
        return False
    longest = max(len(stop) for stop in stops)
    pending = ""
    for piece in pieces:
        pending += piece
        text, stopped = cut_at_stop(pending, stops)
        if stopped:
            if text:
                yield text
            return True
        safe = len(pending) - (longest - 1)
        if safe > 0:
            yield pending[:safe]
            pending = pending[safe:]
    if pending:
        yield pending
    return False
