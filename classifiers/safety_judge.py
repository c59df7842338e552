"""A safety LLM behind an OpenAI-compatible chat endpoint (vLLM, Ray Serve LLM, TGI) as a Moderator member:
Llama Guard 3 or ShieldGemma, asked in its own prompt format, its answer parsed and mapped onto the taxonomy.

- Llama Guard 3 takes the conversation itself: the server applies the model's chat template, which is the
  official moderation prompt (the MLCommons hazard list, "Provide your safety assessment for ONLY THE LAST
  Agent message"). It answers `safe`, or `unsafe` and a line of hazard codes (`S1,S10`).
- ShieldGemma takes one policy per prompt (its model card's template, rendered here) and answers `Yes` (the
  text violates it) or `No`. With `logprobs` the probability of `Yes` is the score; without, Yes scores 1.

It is dear (a GPU model call per text), so the Moderator asks it only about the texts its cheap members are
unsure of, and the IntentClassifier only about the prompts in its review band. A text it could not judge (timeout,
error, an answer in neither format) comes back as None, and the caller applies its `on_error` action to it.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

import httpx

from classifiers.taxonomy import Category

logger = logging.getLogger("safeserve.safety_judge")

C = Category
# Llama Guard 3's hazard codes (MLCommons AI Luminate). S6 specialised advice, S8 intellectual property and S13
# elections have no category in SafeServe's taxonomy (docs/taxonomy.md) and are not reported.
LLAMA_GUARD_3_CODES: dict[str, Category | None] = {
    "S1": C.VIOLENCE,
    "S2": C.FRAUD,  # non-violent crimes: fraud, cyber, drug and property crime
    "S3": C.SEXUAL,  # sex-related crimes
    "S4": C.SEXUAL_MINORS,
    "S5": C.HARASSMENT,  # defamation
    "S6": None,
    "S7": C.PRIVACY,
    "S8": None,
    "S9": C.WEAPONS_CBRN,
    "S10": C.HATE,
    "S11": C.SELF_HARM,
    "S12": C.SEXUAL,
    "S13": None,
    "S14": C.CYBERCRIME,
}
# ShieldGemma's four policies, worded as in its model card, and the category each decides.
SHIELDGEMMA_POLICIES: dict[Category, str] = {
    C.VIOLENCE: '"No Dangerous Content": The chatbot shall not generate content that harming oneself and/or others '
    "(e.g., accessing or building firearms and explosive devices, promotion of terrorism, instructions for "
    "suicide).",
    C.HARASSMENT: '"No Harassment": The chatbot shall not generate content that is malicious, intimidating, '
    "bullying, or abusive content targeting another individual (e.g., physical threats, denial of tragic "
    "events, disparaging victims of violence).",
    C.HATE: '"No Hate Speech": The chatbot shall not generate content that targeting identity and/or protected '
    "attributes (e.g., racial slurs, promotion of discrimination, calls to violence against protected groups) "
    "or dehumanizing/belittling/vilifying on the bases of race, ethnicity, religion, disability, age, "
    "nationality, veteran status, sexual orientation, gender, gender identity, caste, or any other protected "
    "status. We do allow content that includes a reference to a protected individual or group in a positive "
    "manner.",
    C.SEXUAL: '"No Sexually Explicit Information": The chatbot shall not generate content that contains '
    "references to sexual acts or other lewd content (e.g., sexually graphic descriptions, content aimed at "
    "causing arousal). Medical or scientific terms related to human anatomy or sex education are permitted.",
}
JudgeFormat = Literal["llama_guard_3", "shieldgemma"]
# ShieldGemma's P(Yes) at or above which a text counts as unsafe (its model card's decision threshold).
SHIELDGEMMA_UNSAFE_AT = 0.5


class UnparseableAnswer(ValueError):
    pass


@dataclass(frozen=True)
class Judgement:
    """The judge's answer on one text: whether it called the text unsafe, and the categories it named with their
    scores (empty for `safe`, and for an `unsafe` that names no harm in SafeServe's taxonomy)."""

    unsafe: bool
    scores: dict[Category, float] = field(default_factory=dict)

    @property
    def category(self) -> Category | None:
        """The category the judge scored highest, if it named any."""
        named = {category: score for category, score in self.scores.items() if score > 0}
        return max(named, key=named.get) if named else None


def read_llama_guard(answer: str, unsafe_score: float = 1.0) -> Judgement:
    """`safe` -> safe; `unsafe` + codes -> unsafe, each mapped category at `unsafe_score` (codes outside the
    taxonomy, S6, S8 and S13, are not scored)."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if not lines or lines[0].lower() not in ("safe", "unsafe"):
        raise UnparseableAnswer(f"not a Llama Guard answer: {answer[:80]!r}")
    if lines[0].lower() == "safe":
        return Judgement(unsafe=False)
    codes = [code.strip().upper() for line in lines[1:] for code in line.split(",") if code.strip()]
    unknown = [code for code in codes if code not in LLAMA_GUARD_3_CODES]
    if unknown:
        raise UnparseableAnswer(f"unknown Llama Guard hazard codes {unknown}")
    scores = {category: unsafe_score for code in codes if (category := LLAMA_GUARD_3_CODES[code]) is not None}
    return Judgement(unsafe=True, scores=scores)


def parse_llama_guard(answer: str, unsafe_score: float = 1.0) -> dict[Category, float]:
    """`safe` -> {}; `unsafe` + codes -> each mapped category at `unsafe_score` (an unsafe verdict whose codes
    all fall outside the taxonomy, or that names none, scores nothing: it names no harm SafeServe decides)."""
    return read_llama_guard(answer, unsafe_score).scores


def shieldgemma_prompt(text: str, question: str, policy: str) -> str:
    """ShieldGemma's model-card template: a response classified in the context of its prompt, or a text alone
    classified as a user prompt."""
    if question:
        return (
            "You are a policy expert trying to help determine whether an AI response to prompt is in violation of "
            "the defined safety policies.\n\n<start_of_turn>\nHuman Question: "
            f"{question.strip()}\n<end_of_turn>\n\n<start_of_turn>\nChatbot Response: {text.strip()}\n<end_of_turn>"
            f"\n\nOur safety principle is defined in the below:\n\n* {policy}\n\n===\n\nDoes the Chatbot Response "
            "violate the above principle? Your answer must start with 'Yes' or 'No'. And then walk through step by "
            "step to be sure we answer correctly."
        )
    return (
        "You are a policy expert trying to help determine whether a user prompt is in violation of the defined "
        f"safety policies.\n\n<start_of_turn>\nHuman Question: {text.strip()}\n<end_of_turn>\n\nOur safety "
        f"principle is defined in the below:\n\n* {policy}\n\n===\n\nDoes the human question violate the above "
        "principle? Your answer must start with 'Yes' or 'No'. And then walk through step by step to be sure we "
        "answer correctly."
    )


def parse_shieldgemma(answer: str, top_logprobs: list[dict] | None = None) -> float:
    """P(violation): from the first token's log-probabilities of Yes and No when given, else 1.0 for an answer
    that starts with Yes and 0.0 for No."""
    if top_logprobs:
        weights = {"yes": 0.0, "no": 0.0}
        for entry in top_logprobs:
            token = str(entry.get("token", "")).strip().lower()
            if token in weights:
                weights[token] += math.exp(float(entry["logprob"]))
        if weights["yes"] + weights["no"] > 0:
            return weights["yes"] / (weights["yes"] + weights["no"])
    first = answer.strip().split(maxsplit=1)[0].strip(".,:").lower() if answer.strip() else ""
    if first not in ("yes", "no"):
        raise UnparseableAnswer(f"not a ShieldGemma answer: {answer[:80]!r}")
    return 1.0 if first == "yes" else 0.0


class ChatSafetyJudge:
    """Asks the endpoint about each text (concurrently, `concurrency` at a time) and returns per text its
    category scores (`judge`) or its whole answer (`assess`), or None where it got no usable answer in
    `timeout_s`."""

    def __init__(
        self,
        url: str,
        model: str,
        judge_format: JudgeFormat,
        api_key: str | None = None,
        timeout_s: float = 2.0,
        concurrency: int = 8,
        unsafe_score: float = 1.0,
        policies: tuple[Category, ...] = tuple(SHIELDGEMMA_POLICIES),
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="judge")
        self.model = model
        self.judge_format = judge_format
        self.timeout_s = timeout_s
        self.unsafe_score = unsafe_score
        self.policies = policies

    def judge(self, texts: list[str], questions: list[str] | None = None) -> list[dict[Category, float] | None]:
        questions = questions or [""] * len(texts)
        return [None if answer is None else answer.scores for answer in self._pool.map(self._ask, texts, questions)]

    def assess(self, texts: list[str], questions: list[str] | None = None) -> list[Judgement | None]:
        """Every text's answer, all of them within `timeout_s` of the call: a text still queued or asked when it
        ends (more texts than `concurrency`, a server that trickles its answer) has none."""
        questions = questions or [""] * len(texts)
        futures = [self._pool.submit(self._ask, text, asked) for text, asked in zip(texts, questions, strict=True)]
        wait(futures, timeout=self.timeout_s)
        answers = []
        for future in futures:
            future.cancel()
            answers.append(future.result() if future.done() and not future.cancelled() else None)
        return answers

    def _ask(self, text: str, question: str) -> Judgement | None:
        try:
            if self.judge_format == "llama_guard_3":
                return self._llama_guard(text, question)
            return self._shieldgemma(text, question)
        except (httpx.HTTPError, UnparseableAnswer, KeyError, IndexError, TypeError, ValueError) as exc:
            logger.warning("safety judge %s gave no verdict: %s", self.model, exc.__class__.__name__)
            return None

    def _chat(self, messages: list[dict], **extra) -> dict:
        response = self._client.post(
            "/chat/completions",
            json={"model": self.model, "messages": messages, "temperature": 0, **extra},
        )
        response.raise_for_status()
        return response.json()["choices"][0]

    def _llama_guard(self, text: str, question: str) -> Judgement:
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
        if not question:
            messages = [{"role": "user", "content": text}]
        choice = self._chat(messages, max_tokens=20)
        return read_llama_guard(choice["message"]["content"] or "", self.unsafe_score)

    def _shieldgemma(self, text: str, question: str) -> Judgement:
        scores = {}
        for category in self.policies:
            prompt = shieldgemma_prompt(text, question, SHIELDGEMMA_POLICIES[category])
            choice = self._chat([{"role": "user", "content": prompt}], max_tokens=1, logprobs=True, top_logprobs=5)
            content = (choice.get("logprobs") or {}).get("content") or []
            top = content[0].get("top_logprobs") if content else None
            scores[category] = parse_shieldgemma(choice["message"]["content"] or "", top)
        return Judgement(unsafe=max(scores.values(), default=0.0) >= SHIELDGEMMA_UNSAFE_AT, scores=scores)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._client.close()
