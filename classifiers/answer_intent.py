"""Harmful-instruction detection on outputs: the input intent ensemble applied to an answer in the context of
the question it answers.

An answer that walks through building a weapon is unsafe whatever the request looked like (a jailbreak may
have got the request past the input side). The intent models know the harm categories from requests; read
together with its question, an answer shows the same intent. Only the categories where harm lies in
instructions are scored: prompt attacks are not (an answer is not an attack on the gateway), nor are hate and
harassment, which are about how a text speaks of people. The intent models learnt those from requests, and on
plain statements about groups they flagged a quarter of the benign ToxiGen statements (docs/evaluation.md);
Detoxify and the lexicon judge them on answers.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from classifiers.intent_model import IntentModel, NgramStage, in_band, top_carries_mass
from classifiers.taxonomy import HARM_CATEGORIES, Category

INSTRUCTION_CATEGORIES = HARM_CATEGORIES - {Category.HATE, Category.HARASSMENT}
QUESTION_CHARS = 600  # the end of a long conversation is the question being answered
# The answer check's cascade band, on the instruction categories' n-gram mass: chosen on the output dev set's
# answers (bench/moderator_policy.py), not the input side's band, which was chosen out of fold on requests.
ANSWER_EMBED_BAND = (0.3, 0.8)


def exchange_text(answer: str, question: str = "") -> str:
    """The text the models read: the question's last `QUESTION_CHARS` characters, a blank line, the answer."""
    question = question.strip()[-QUESTION_CHARS:]
    return f"{question}\n\n{answer}" if question else answer


class HarmfulAnswerScorer:
    """A `Scorer` over exchange texts: each instruction category's probability, the top one carrying their
    whole mass (as `IntentModel.predict` does with the unsafe mass).

    The cascade watches the instruction categories' n-gram mass, not the whole unsafe mass: answers read unlike
    the requests the models learnt from, so the n-gram member puts some mass on prompt-attack classes for most
    of them, mass this scorer does not report. On the evaluation exchanges, the full ensemble scored none whose
    n-gram instruction mass was under 0.1 above 0.31, under the answer check's review band. Watching the whole
    mass sent the embedding member 59 % of those exchanges, watching what is scored about a third; the answer
    check's decisions moved by one exchange each way (docs/evaluation.md)."""

    def __init__(self, model: IntentModel | NgramAnswerModel) -> None:
        self.model = model
        self.categories = [c for c in model.categories if c in INSTRUCTION_CATEGORIES]

    def first_stage(self) -> HarmfulAnswerScorer:
        """This scorer on the model's n-gram member alone: the same scores and band wherever no text is in the
        band, and small enough to copy to the ingress."""
        if isinstance(self.model, NgramAnswerModel):
            return self
        return HarmfulAnswerScorer(NgramAnswerModel(self.model.first_stage()))

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        return self.predict_with_band(texts)[0]

    def predict_with_band(self, texts: list[str]) -> tuple[list[dict[Category, float]], list[bool]]:
        """`predict`, and for each text whether the embedding members read it (the cascade's dear part)."""
        if not texts:
            return [], []
        proba, embedded = self.model.cascade(texts, watched=self.categories)
        columns = self.model.columns
        scores = [top_carries_mass({c: float(row[columns[c]]) for c in self.categories}) for row in proba]
        return scores, [bool(flag) for flag in embedded]


class NgramAnswerModel:
    """`IntentModel.cascade` with the n-gram member alone: its probabilities, and which texts the embedding
    members would read. Where a text would not go to them, the probabilities are the whole ensemble's."""

    def __init__(self, stage: NgramStage) -> None:
        self.stage = stage
        self.categories = [category for _, category in stage.categories]
        self.columns = {category: i for i, category in stage.categories}

    def cascade(self, texts: list[str], watched: Collection[Category]) -> tuple[np.ndarray, np.ndarray]:
        proba = self.stage.member.predict_proba(texts)
        columns = [i for i, category in self.stage.categories if category in watched]
        return proba, in_band(proba[:, columns].sum(axis=1), self.stage.embed_band)
