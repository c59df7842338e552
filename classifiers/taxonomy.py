"""The one category taxonomy that SafeServe uses end to end (classifiers, incidents, metrics, reviews, API).

Prompt attacks are about the *form* of an input (an attempt to subvert the model); harm categories are about
its *content*. Output-only categories cover what a model may leak or say rather than what a user may ask.
The mappings to the OpenAI moderation categories and to the MLCommons hazard taxonomy (S1-S14, used by
Llama Guard 3) are documented in docs/taxonomy.md and used by `/v1/moderations`.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    # Prompt attacks
    PROMPT_INJECTION = "prompt_injection"
    JAILBREAK = "jailbreak"
    SYSTEM_PROMPT_EXTRACTION = "system_prompt_extraction"
    # Harm categories
    VIOLENCE = "violence"
    WEAPONS_CBRN = "weapons_cbrn"
    CYBERCRIME = "cybercrime"
    FRAUD = "fraud"
    HATE = "hate"
    HARASSMENT = "harassment"
    SELF_HARM = "self_harm"
    SEXUAL = "sexual"
    SEXUAL_MINORS = "sexual_minors"
    PRIVACY = "privacy"
    ILLEGAL_DRUGS = "illegal_drugs"
    # Output-side only
    PROFANITY = "profanity"
    SECRETS = "secrets"


PROMPT_ATTACKS: frozenset[Category] = frozenset(
    {Category.PROMPT_INJECTION, Category.JAILBREAK, Category.SYSTEM_PROMPT_EXTRACTION}
)
HARM_CATEGORIES: frozenset[Category] = frozenset(
    set(Category) - PROMPT_ATTACKS - {Category.PROFANITY, Category.SECRETS}
)

# Our category -> the OpenAI moderation categories it feeds (omni-moderation names).
OPENAI_MODERATION: dict[Category, tuple[str, ...]] = {
    Category.VIOLENCE: ("violence",),
    Category.WEAPONS_CBRN: ("illicit/violent", "illicit"),
    Category.CYBERCRIME: ("illicit",),
    Category.FRAUD: ("illicit",),
    Category.HATE: ("hate",),
    Category.HARASSMENT: ("harassment",),
    Category.SELF_HARM: ("self-harm",),
    Category.SEXUAL: ("sexual",),
    Category.SEXUAL_MINORS: ("sexual/minors", "sexual"),
    Category.ILLEGAL_DRUGS: ("illicit",),
    Category.PROFANITY: ("harassment",),
}
OPENAI_MODERATION_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

# Our category -> MLCommons AI Luminate hazard category (as used by Llama Guard 3).
MLCOMMONS_HAZARD: dict[Category, str] = {
    Category.VIOLENCE: "S1 Violent Crimes",
    Category.FRAUD: "S2 Non-Violent Crimes",
    Category.CYBERCRIME: "S2 Non-Violent Crimes",
    Category.ILLEGAL_DRUGS: "S2 Non-Violent Crimes",
    Category.SEXUAL_MINORS: "S4 Child Sexual Exploitation",
    Category.PRIVACY: "S7 Privacy",
    Category.SECRETS: "S7 Privacy",
    Category.WEAPONS_CBRN: "S9 Indiscriminate Weapons",
    Category.HATE: "S10 Hate",
    Category.SELF_HARM: "S11 Suicide & Self-Harm",
    Category.SEXUAL: "S12 Sexual Content",
    Category.HARASSMENT: "S10 Hate",
}


def openai_scores(scores: dict[Category, float]) -> dict[str, float]:
    """Fold our per-category scores into the OpenAI moderation categories (max over what maps into each)."""
    folded = {name: 0.0 for name in OPENAI_MODERATION_CATEGORIES}
    for category, score in scores.items():
        for name in OPENAI_MODERATION.get(category, ()):
            folded[name] = max(folded[name], score)
    return folded
