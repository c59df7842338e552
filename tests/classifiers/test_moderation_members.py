"""The Moderator's pluggable members, loaded by their real loaders: a Hugging Face text-classification directory,
its ONNX export and its Detoxify checkpoint (the small Detoxify-format model `safeserve models build` trains:
one model, three formats, so each loader is checked against the others), and a safety LLM behind a scripted
OpenAI-compatible endpoint."""

from __future__ import annotations

import time

import pytest

from classifiers.models_build import TOXICITY_CKPT, TOXICITY_HF_DIR, TOXICITY_ONNX_DIR
from classifiers.moderation import Member, OutputModerator
from classifiers.patterns import PatternSet
from classifiers.policy import Bands, ThresholdPolicy
from classifiers.safety_judge import (
    ChatSafetyJudge,
    Judgement,
    UnparseableAnswer,
    parse_llama_guard,
    parse_shieldgemma,
    read_llama_guard,
)
from classifiers.taxonomy import Category
from classifiers.text_classifiers import HFTextClassifier, OnnxTextClassifier
from classifiers.toxicity_model import DetoxifyScorer
from classifiers.verdict import Action
from tests.scripted_judge import ScriptedJudge

TOXIC = "You are a worthless, stupid idiot and everyone hates you, you pathetic loser."
CLEAN = "Thanks for the help, have a lovely afternoon."
LABELS = {"toxic": Category.HARASSMENT}


@pytest.fixture(scope="module")
def hf(models_dir) -> HFTextClassifier:
    return HFTextClassifier(models_dir / TOXICITY_HF_DIR, LABELS)


def test_a_hugging_face_directory_scores_toxic_text_above_clean(hf):
    toxic, clean = hf.predict([TOXIC, CLEAN])
    assert set(toxic) == set(clean) == {Category.HARASSMENT}
    assert toxic[Category.HARASSMENT] > 0.5 > clean[Category.HARASSMENT]
    assert hf.predict([]) == []


def test_the_onnx_export_and_the_detoxify_checkpoint_give_the_directorys_scores(hf, models_dir):
    texts = [TOXIC, CLEAN, "Short.", "A longer answer about the history of the printing press in Europe. " * 6]
    expected = [row[Category.HARASSMENT] for row in hf.predict(texts)]
    onnx = OnnxTextClassifier(models_dir / TOXICITY_ONNX_DIR, LABELS)
    assert [row[Category.HARASSMENT] for row in onnx.predict(texts)] == pytest.approx(expected, abs=1e-4)
    detoxify = DetoxifyScorer(models_dir / TOXICITY_CKPT, models_dir / TOXICITY_HF_DIR)
    assert detoxify.class_names == ["toxicity"]
    assert [row[Category.HARASSMENT] for row in detoxify.predict(texts)] == pytest.approx(expected, abs=1e-4)


def test_unmapped_labels_are_not_reported_and_unknown_ones_are_refused(models_dir):
    silent = HFTextClassifier(models_dir / TOXICITY_HF_DIR, {})
    assert silent.predict([TOXIC]) == [{}]
    with pytest.raises(ValueError, match="no labels"):
        HFTextClassifier(models_dir / TOXICITY_HF_DIR, {"insult": Category.HARASSMENT})
    with pytest.raises(ValueError, match="no labels"):
        OnnxTextClassifier(models_dir / TOXICITY_ONNX_DIR, {"identity_hate": Category.HATE})


def test_llama_guard_answers_are_parsed_onto_the_taxonomy():
    assert parse_llama_guard("safe") == {}
    assert parse_llama_guard("unsafe\nS1,S10") == {Category.VIOLENCE: 1.0, Category.HATE: 1.0}
    assert parse_llama_guard(" unsafe\nS9 ", unsafe_score=0.9) == {Category.WEAPONS_CBRN: 0.9}
    assert parse_llama_guard("unsafe\nS8") == {}  # intellectual property: outside the taxonomy
    assert read_llama_guard("unsafe\nS8") == Judgement(unsafe=True)  # still an unsafe answer, naming no category
    assert read_llama_guard("unsafe\nS2,S14").category in (Category.FRAUD, Category.CYBERCRIME)
    assert read_llama_guard("safe") == Judgement(unsafe=False)
    for garbage in ("", "I think it's fine", "unsafe\nS99"):
        with pytest.raises(UnparseableAnswer):
            parse_llama_guard(garbage)


def test_shieldgemma_answers_read_yes_and_no_or_their_probabilities():
    assert parse_shieldgemma("Yes, the response...") == 1.0
    assert parse_shieldgemma("No.") == 0.0
    top = [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]
    assert parse_shieldgemma("Yes", top) == pytest.approx(0.909, abs=1e-3)
    with pytest.raises(UnparseableAnswer):
        parse_shieldgemma("Maybe")


@pytest.fixture(scope="module")
def scripted_judge():
    with ScriptedJudge() as judge:
        yield judge


def test_llama_guard_over_http_reads_the_conversation_and_fails_soft(scripted_judge):
    judge = ChatSafetyJudge(scripted_judge.url, "llama-guard-3", "llama_guard_3", timeout_s=0.5)
    started = time.perf_counter()
    verdicts = judge.judge(["a hateful remark", "a kind remark", "answer slowly", "garbled"], ["q1", "q2", "q3", ""])
    assert verdicts == [{Category.HATE: 1.0}, {}, None, None]
    assert time.perf_counter() - started < 2.5  # the stalled text timed out; the others did not wait for it
    asked = next(r for r in scripted_judge.requests if r["messages"][-1]["content"] == "a hateful remark")
    assert asked["model"] == "llama-guard-3"
    assert asked["messages"] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a hateful remark"},
    ]
    alone = next(r for r in scripted_judge.requests if r["messages"][-1]["content"] == "garbled")
    assert alone["messages"] == [{"role": "user", "content": "garbled"}]
    judge.close()


def test_shieldgemma_over_http_asks_one_policy_at_a_time(scripted_judge):
    judge = ChatSafetyJudge(
        scripted_judge.url, "shieldgemma", "shieldgemma", policies=(Category.HATE, Category.HARASSMENT)
    )
    (hateful, kind) = judge.judge(["a hateful remark", "a kind remark"], ["What do you think?", ""])
    assert hateful[Category.HATE] > 0.9 and hateful[Category.HARASSMENT] < 0.1
    assert kind[Category.HATE] < 0.1
    prompts = [r["messages"][0]["content"] for r in scripted_judge.requests if r["model"] == "shieldgemma"]
    assert any("Chatbot Response: a hateful remark" in p and "Human Question: What do you think?" in p for p in prompts)
    assert any("Does the human question violate" in p and "a kind remark" in p for p in prompts)
    judge.close()


def test_a_judge_that_cannot_answer_sends_the_text_to_review_not_through(scripted_judge):
    judge = ChatSafetyJudge(scripted_judge.url, "llama-guard-3", "llama_guard_3", timeout_s=0.5)
    member = Member("llama-guard", judge.judge, "band", Action.REVIEW)
    moderator = OutputModerator(
        PatternSet([], layer="moderator"), [], ThresholdPolicy(default=Bands(review=0.5, block=0.9)), members=[member]
    )
    hateful, kind, slow = moderator.assess(["a hateful remark", "a kind remark", "answer slowly"])
    assert hateful.verdict.action is Action.BLOCK and hateful.verdict.category is Category.HATE
    assert kind.verdict.action is Action.ALLOW
    assert slow.verdict.action is Action.REVIEW and "member_unavailable:llama-guard" in slow.verdict.reasons
    strict_member = Member("llama-guard", judge.judge, "band", None)
    failing = OutputModerator(PatternSet([], layer="moderator"), [], ThresholdPolicy(), members=[strict_member])
    with pytest.raises(RuntimeError, match="no verdict"):
        failing.assess(["answer slowly"])
    judge.close()


def test_a_whole_assessment_ends_within_the_timeout(scripted_judge):
    judge = ChatSafetyJudge(scripted_judge.url, "llama-guard-3", "llama_guard_3", timeout_s=0.5, concurrency=1)
    started = time.perf_counter()
    # One request at a time: the stalled one holds the only slot, so the texts queued behind it get no answer.
    assert judge.assess(["answer slowly", "a hateful remark", "a kind remark"]) == [None, None, None]
    assert time.perf_counter() - started < 1.0
    assert judge.assess(["a hateful remark", "a kind remark"]) == [
        Judgement(unsafe=True, scores={Category.HATE: 1.0}),
        Judgement(unsafe=False),
    ]
    shieldgemma = ChatSafetyJudge(scripted_judge.url, "shieldgemma", "shieldgemma", policies=(Category.HATE,))
    (hateful, kind) = shieldgemma.assess(["a hateful remark", "a kind remark"])
    assert hateful.unsafe and hateful.category is Category.HATE and not kind.unsafe
    judge.close()
    shieldgemma.close()
