"""Generation with the default model (SmolLM2, built by `safeserve models build`): constrained decoding makes a
deny-listed phrase of the output policy impossible to emit, stop sequences end the answer, and a stream equals
the whole answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest
import torch

from classifiers.steering import Steering, steer
from deployments.config import GeneratorConfig, ModeratorConfig
from deployments.generation import SamplingParams, StreamEnd
from deployments.transformers_backend import TransformersBackend, banned_token_sequences, cut_at_stop, without_stops
from harness.processes import app_deploy_config, deployment_config

PROMPT = steer([{"role": "user", "content": "Name three colours of the rainbow."}], Steering())
GREEDY = SamplingParams(max_tokens=40)


@pytest.fixture(scope="module")
def default_model(models_dir) -> TransformersBackend:
    return TransformersBackend(GeneratorConfig(device="cpu", torch_threads=2))


@pytest.fixture(scope="module")
def answer(default_model) -> str:
    return default_model.generate(PROMPT, GREEDY).text


def test_a_deny_list_phrase_of_the_output_policy_cannot_be_generated(models_dir, default_model, answer) -> None:
    # A word the model does say, unconstrained and greedy, made a plain-phrase block rule of the shipped output
    # policy: banning what the policy derives must change the answer.
    word = next(w.strip(".,!:;") for w in answer.split()[2:] if len(w.strip(".,!:;")) > 3)
    assert word.lower() in answer.lower()
    moderator = deployment_config(app_deploy_config(), "Moderator")["user_config"]
    moderator["denylist"].append({"name": "test-said-word", "category": "violence", "pattern": rf"\b{word}\b"})
    banned = ModeratorConfig.model_validate(moderator).decoding_bans()
    assert word in banned and "DAN mode enabled" in banned
    params = replace(GREEDY, banned=banned)
    constrained = default_model.generate(PROMPT, params).text
    assert word.lower() not in constrained.lower(), (word, constrained)
    streamed, _ = streamed_text(default_model.stream(PROMPT, params))
    assert word.lower() not in streamed.lower()


def test_a_banned_phrase_is_banned_in_its_common_spellings(default_model) -> None:
    sequences = banned_token_sequences(default_model.tokenizer, ("zebra unsafe passage",))
    encode = partial(default_model.tokenizer.encode, add_special_tokens=False)
    for spelling in ("zebra unsafe passage", " Zebra unsafe passage", " Zebra Unsafe Passage", "ZEBRA UNSAFE PASSAGE"):
        assert encode(spelling) in sequences, spelling


def streamed_text(pieces: Iterator[str | StreamEnd]) -> tuple[str, str | None]:
    """A backend stream's text, and the finish reason it ended with."""
    text, finish = "", None
    for piece in pieces:
        if isinstance(piece, StreamEnd):
            finish = piece.finish_reason
        else:
            assert finish is None, "text after the stream's end"
            text += piece
    return text, finish


def test_a_stream_is_the_whole_answer_in_order_and_ends_as_the_answer_did(default_model, answer) -> None:
    whole = default_model.generate(PROMPT, GREEDY)
    text, finish = streamed_text(default_model.stream(PROMPT, GREEDY))
    assert (text.strip(), finish) == (whole.text, whole.finish_reason)
    cut = replace(GREEDY, max_tokens=5)  # the answer is longer: generation runs out of tokens
    text, finish = streamed_text(default_model.stream(PROMPT, cut))
    assert finish == "length" == default_model.generate(PROMPT, cut).finish_reason
    assert answer.startswith(text.strip())


def test_a_stop_sequence_ends_the_answer_and_is_not_returned(default_model, answer) -> None:
    stop = answer.split()[3]
    params = SamplingParams(max_tokens=40, stop=(stop,))
    stopped = default_model.generate(PROMPT, params)
    assert stop not in stopped.text and answer.startswith(stopped.text)
    assert stopped.finish_reason == "stop"
    text, finish = streamed_text(default_model.stream(PROMPT, params))
    assert (text.strip(), finish) == (stopped.text, "stop")


def test_stop_sequences_split_across_pieces_are_still_cut() -> None:
    assert cut_at_stop("one two STOP three", ("STOP",)) == ("one two ", True)
    pieces = ["one t", "wo S", "TO", "P three"]
    assert "".join(without_stops(iter(pieces), ("STOP",))) == "one two "
    assert "".join(without_stops(iter(pieces), ())) == "one two STOP three"
    assert "".join(without_stops(iter(["no stop here"]), ("STOP",))) == "no stop here"


def test_concurrent_requests_are_generated_as_one_batch_with_the_same_answers(default_model, answer) -> None:
    others = [
        steer([{"role": "user", "content": "What is the capital of France?"}], Steering()),
        steer([{"role": "user", "content": "Write one sentence about autumn leaves and the wind."}], Steering()),
    ]
    params = [GREEDY, SamplingParams(max_tokens=5), SamplingParams(max_tokens=30)]
    batch = default_model.generate_batch([PROMPT, *others], params)
    alone = [default_model.generate(conversation, p) for conversation, p in zip([PROMPT, *others], params, strict=True)]
    assert batch[0].text == answer
    assert [c.text for c in batch] == [c.text for c in alone]
    assert batch[1].completion_tokens <= 5 and batch[1].finish_reason == "length"
    assert [c.prompt_tokens for c in batch] == [c.prompt_tokens for c in alone]


def test_the_backend_loads_a_gguf_file_named_as_the_model(models_dir) -> None:
    """`model` may name a GGUF file (here the one the default model is converted from), de-quantised on load."""
    gguf = next((models_dir / "smollm2").glob("*.gguf"))
    backend = TransformersBackend(GeneratorConfig(model=str(gguf.relative_to(models_dir)), device="cpu"))
    completion = backend.generate(PROMPT, replace(GREEDY, max_tokens=8))
    assert completion.completion_tokens > 0 and completion.text.strip()


def test_a_request_the_model_cannot_take_fails_alone_in_its_batch(models_dir) -> None:
    """Concurrent requests share a batch; a seed torch refuses once failed every request batched with it. The
    batch handler is called as Serve calls it with a batch of two (Serve's batching needs a replica)."""
    import asyncio

    from deployments.generation import Completion
    from deployments.generator import Generator

    generator = Generator()
    generator.reconfigure({"device": "cpu", "torch_threads": 2})
    question = [{"role": "user", "content": "Name a colour."}]
    good = SamplingParams(max_tokens=4)
    bad = SamplingParams(max_tokens=4, temperature=0.7, seed=2**70)  # beyond torch.manual_seed's range
    batch = Generator._generate_batch.__wrapped__(generator, [question, question], [good, bad])
    answered, failed = asyncio.run(batch)
    assert isinstance(answered, Completion) and answered.text
    assert isinstance(failed, Exception)


# Issue 23: the default model as configs/local.yaml serves it (steering and repetition settings), greedy. With the
# old config each of these failed: "Name a colour." was refused, the sleep tips counted "1. 1. 1. 2. 3. 4. ...",
# and the haiku said "a leaf is left alone" over and over.
SERVED_CASES = ("Name a colour.", "Give me three tips for sleeping better.", "Write a haiku about autumn.")


@pytest.fixture(scope="module")
def served_answers(default_model) -> dict[str, str]:
    """One batch of the issue's three prompts, steered and sampled as the local config serves them."""
    config = GeneratorConfig.model_validate(deployment_config(app_deploy_config(), "Generator")["user_config"])
    params = SamplingParams(
        max_tokens=64,
        repetition_penalty=config.repetition_penalty,
        no_repeat_ngram_size=config.no_repeat_ngram_size,
    )
    conversations = [steer([{"role": "user", "content": p}], config.steering) for p in SERVED_CASES]
    completions = default_model.generate_batch(conversations, [params] * len(SERVED_CASES))
    return {prompt: c.text for prompt, c in zip(SERVED_CASES, completions, strict=True)}


def test_the_served_model_names_a_colour_instead_of_refusing(served_answers) -> None:
    from bench.generation import is_refusal

    answer = served_answers["Name a colour."]
    assert answer and not is_refusal(answer), answer


def test_the_served_model_gives_sleep_tips_without_counting_in_a_loop(served_answers) -> None:
    from bench.generation import is_degenerate

    answer = served_answers["Give me three tips for sleeping better."]
    assert "1. 1." not in answer and not is_degenerate(answer), answer
    assert sum(c.isalpha() for c in answer) > len(answer) / 2, answer


def test_the_served_model_writes_a_haiku_without_repeating_a_line(served_answers) -> None:
    from bench.generation import is_degenerate, repeated_ngram_share

    answer = served_answers["Write a haiku about autumn."]
    assert not is_degenerate(answer) and repeated_ngram_share(answer) < 0.1, answer
    parts = [p.strip().lower() for p in re.split(r"[\n,.;!?]", answer) if len(p.split()) >= 3]
    assert all(parts.count(p) < 3 for p in parts), answer


def test_the_repetition_settings_read_only_the_answer() -> None:
    """The question's words stay free: an n-gram of the prompt may appear once in the answer, and the prompt's
    repeated tokens do not count against the answer."""
    from deployments.transformers_backend import _NoRepeatNGramInAnswer

    prompt = torch.tensor([[5, 6, 7, 5, 6]])  # "5 6" then 7 in the prompt: an n-gram ban over it would ban 7
    scores = torch.zeros(1, 10)
    assert not torch.isinf(_NoRepeatNGramInAnswer(3, width=5)(prompt, scores.clone())).any()
    answered = torch.tensor([[1, 2, 5, 6, 7, 5, 6]])  # the answer (after 2 prompt tokens) repeats "5 6": 7 banned
    banned = _NoRepeatNGramInAnswer(3, width=2)(answered, scores.clone())
    assert torch.isinf(banned[0, 7]) and not torch.isinf(banned[0, :7]).any()
