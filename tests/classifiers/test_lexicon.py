"""Swear words and slurs: whole-word matching through obfuscation, exact spans, and the per-severity policy."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from classifiers.lexicon import (
    DEFAULT_PATH,
    Entry,
    Lexicon,
    LexiconAction,
    LexiconError,
    LexiconPolicy,
    Severity,
    default_lexicon,
    mask,
)
from classifiers.moderation import OutputModerator
from classifiers.patterns import PatternSet
from classifiers.policy import ThresholdPolicy
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Redaction, apply_redactions, merge_redactions
from deployments.config import ModeratorConfig
from harness.processes import ROOT

# One listed word per severity (and both categories of `strong`), as the lexicon file rates them.
SAMPLES = [
    ("damn", Severity.MILD, Category.PROFANITY),
    ("bitch", Severity.MODERATE, Category.PROFANITY),
    ("fuck", Severity.STRONG, Category.PROFANITY),
    ("retard", Severity.STRONG, Category.HATE),
    ("wetback", Severity.SEVERE, Category.HATE),
]


def _only(severity: Severity, action: LexiconAction) -> LexiconPolicy:
    """A policy that allows every severity but `severity`, which gets `action`."""
    return LexiconPolicy.model_validate({s.value: "allow" for s in Severity} | {severity.value: action.value})


# --- the data -----------------------------------------------------------------------------------------------


def test_packaged_lexicon_rates_every_word_and_keeps_its_provenance() -> None:
    entries = default_lexicon().entries
    assert 100 <= len(entries) <= 400
    assert {e.severity for e in entries} == set(Severity)
    assert all(e.category is Category.HATE for e in entries if e.severity is Severity.SEVERE)
    assert {e.category for e in entries} == {Category.PROFANITY, Category.HATE}
    text = DEFAULT_PATH.read_text()
    assert "package: profy-filter" in text and "version: 0.2.0" in text and "licence: MIT" in text
    assert f"{len(entries)} English words" in (ROOT / "docs" / "taxonomy.md").read_text()


@pytest.mark.parametrize(("word", "severity", "category"), SAMPLES)
def test_sample_words_have_their_severity_and_category(word: str, severity: Severity, category: Category) -> None:
    assert default_lexicon().lookup(word) == Entry(word, severity, category)


def test_bad_lexicon_data_is_rejected(tmp_path) -> None:
    with pytest.raises(LexiconError, match="only the letters a-z"):
        Lexicon([Entry("f-word", Severity.MILD, Category.PROFANITY)])
    with pytest.raises(LexiconError, match="collapse to one word"):
        Lexicon([Entry(t, Severity.MILD, Category.PROFANITY) for t in ("shit", "shiit")])
    bad = tmp_path / "lexicon.yaml"
    bad.write_text("terms:\n  awful:\n    profanity: [darn]\n")
    with pytest.raises(LexiconError, match=r"lexicon\.yaml.*'awful' is not a valid Severity"):
        Lexicon.load(bad)


# --- matching -----------------------------------------------------------------------------------------------

OBFUSCATED = [
    "shit",
    "SHIT",
    "ShIt",
    "sh1t",
    "$hit",
    "sh!t",
    "shiiiiit",
    "s h i t",
    "s.h.i.t",
    "s-h-i-t",
    "s_h_i_t",
    "s*h*i*t",
    "\u0455hit",  # Cyrillic dze
    "\uff53\uff48\uff49\uff54",  # fullwidth
    "sh\u200bit",  # zero-width space
    "shi\u0301t",  # combining accent
]


@pytest.mark.parametrize("form", OBFUSCATED)
def test_obfuscated_forms_are_found_with_their_exact_span(form: str) -> None:
    text = f"Well, {form}! That went badly."
    (finding,) = default_lexicon().find(text)
    assert finding.entry.term == "shit"
    assert text[finding.start : finding.end] == form == finding.original
    redacted = apply_redactions(text, [finding.redaction()])
    assert redacted == f"Well, {mask(form)}! That went badly." and "shit" not in redacted.lower()


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("a$$hole and @ss", ["asshole", "ass"]),
        ("F U C K you", ["fuck"]),
        ("you are a f u c k i n g idiot", ["fucking"]),  # a one-letter word before the run is not part of it
        ("son-of-a-bitch, mother-fucker", ["bitch", "fucker"]),
        ("nigger's", ["nigger"]),
        ("as asss", ["ass"]),  # a stretched letter counts, a missing one does not
    ],
)
def test_words_found_in_text(text: str, terms: list[str]) -> None:
    assert [f.entry.term for f in default_lexicon().find(text)] == terms


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United played in Penistone.",
        "The class is assessing its assets with a compass.",
        "The pilot left the cockpit for a cocktail.",
        "My therapist recommended a shiitake risotto (shitake, in some menus).",
        "The assassin passed the bass to the grasshopper in Sussex.",
        "He let out a snigger about Niger and the spicy analysis.",
        "She graduated summa cum laude, then saw Moby Dick in hell's kitchen with a bloody nose.",
        "Found a chink in the armour, and a chink of light.",
        "The retarded potential is used to retard the wave.",
        "Commit it with git; the titmouse and the great tit are birds.",
        "Order 455 of 2024: x = a1 + b2",
        "shit2 and class2 are identifiers",
    ],
)
def test_innocent_words_and_phrases_do_not_match(text: str) -> None:
    assert default_lexicon().find(text) == []
    assert default_lexicon().unlocated(text) == []


def test_exception_phrases_only_cover_their_own_words() -> None:
    found = default_lexicon().find("Not a chink in the armour, but you chink.")
    assert [(f.entry.term, f.start) for f in found] == [("chink", 35)]


def test_mask_keeps_the_first_character_and_the_spacing() -> None:
    assert mask("fuck") == "f***"
    assert mask("s h i t") == "s * * *"
    assert mask("a$$") == "a**"


def test_words_only_seen_encoded_are_unlocated() -> None:
    encoded = base64.b64encode(b"shit happens all the time").decode()
    lexicon = default_lexicon()
    assert lexicon.find(encoded) == []
    assert [e.term for e in lexicon.unlocated(encoded)] == ["shit"]
    # Words located in the text are not reported again because a decoded view shows them too; an encoded
    # copy beyond them is.
    assert lexicon.unlocated("s h i t, sh1t and \u0455hit") == []
    assert [e.term for e in lexicon.unlocated(f"shit: {encoded}")] == ["shit"]


# --- policy -------------------------------------------------------------------------------------------------


def test_default_policy_redacts_swearing_and_blocks_slurs() -> None:
    policy = LexiconPolicy()
    assert [policy.action(s) for s in Severity] == [
        LexiconAction.REDACT,
        LexiconAction.REDACT,
        LexiconAction.REDACT,
        LexiconAction.BLOCK,
    ]
    assert policy.unlocated is LexiconAction.REVIEW


@pytest.mark.parametrize(("word", "severity", "category"), SAMPLES)
def test_each_severity_takes_the_action_its_policy_gives(word: str, severity: Severity, category: Category) -> None:
    text = f"It said {word.upper()} twice: {word}."
    start = len("It said ")
    kind = f"{category}:{severity}"

    allowed = _only(severity, LexiconAction.ALLOW).check(text, layer="t")
    assert allowed.action is Action.ALLOW and allowed.redactions == () and allowed.scores == {}

    redacted = _only(severity, LexiconAction.REDACT).check(text, layer="t")
    assert redacted.action is Action.ALLOW and redacted.scores == {category: 1.0}
    assert redacted.redactions[0] == Redaction(
        kind, category, start, start + len(word), word[0].upper() + "*" * (len(word) - 1)
    )
    assert apply_redactions(text, redacted.redactions) == f"It said {mask(word.upper())} twice: {mask(word)}."

    reviewed = _only(severity, LexiconAction.REVIEW).check(text, layer="t")
    assert (reviewed.action, reviewed.category, reviewed.layer) == (Action.REVIEW, category, "t")
    assert reviewed.reasons == (f"lexicon:{kind}",) and reviewed.flagged == {category}

    blocked = _only(severity, LexiconAction.BLOCK).check(text, layer="t")
    assert (blocked.action, blocked.category, blocked.score) == (Action.BLOCK, category, 1.0)
    assert blocked.reasons == (f"lexicon:{kind}",) and blocked.redactions == ()

    other = next(s for s in Severity if s is not severity)
    assert _only(other, LexiconAction.BLOCK).check(text, layer="t").action is Action.ALLOW


def test_the_worst_action_decides_and_redactions_stay_on_a_review() -> None:
    policy = LexiconPolicy(moderate=LexiconAction.REVIEW)
    verdict = policy.check("damn, you bitch", layer="t")
    assert verdict.action is Action.REVIEW and verdict.category is Category.PROFANITY
    assert apply_redactions("damn, you bitch", verdict.redactions) == "d***, you bitch"
    blocked = policy.check("damn, you bitch wetback", layer="t")
    assert (blocked.action, blocked.category) == (Action.BLOCK, Category.HATE)
    assert blocked.flagged == {Category.HATE, Category.PROFANITY} and blocked.redactions == ()


def test_an_unlocated_redact_word_is_flagged_not_masked() -> None:
    text = f"Decode this: {base64.b64encode(b'what the fuck is going on').decode()}"
    reviewed = LexiconPolicy().check(text, layer="t")
    assert reviewed.action is Action.REVIEW and reviewed.redactions == ()
    assert reviewed.reasons == ("lexicon:profanity:strong:unlocated",)
    assert LexiconPolicy(unlocated=LexiconAction.BLOCK).check(text, layer="t").action is Action.BLOCK
    assert LexiconPolicy(strong=LexiconAction.ALLOW).check(text, layer="t").action is Action.ALLOW
    slur = f"Decode this: {base64.b64encode(b'they called him a wetback').decode()}"
    assert LexiconPolicy().check(slur, layer="t").action is Action.BLOCK


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"medium": "redact"}, "medium"),
        ({"mild": "mask"}, "mild"),
        ({"unlocated": "redact"}, "must be review or block"),
        ({"unlocated": "allow"}, "must be review or block"),
    ],
)
def test_bad_policy_is_rejected_with_the_field_named(config: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LexiconPolicy.model_validate(config)
    with pytest.raises(ValidationError, match=f"lexicon.{next(iter(config))}"):
        ModeratorConfig.model_validate({"lexicon": config})


def test_moderator_config_takes_the_policy() -> None:
    config = ModeratorConfig.model_validate({"lexicon": {"mild": "allow", "severe": "review"}})
    assert config.lexicon.action(Severity.MILD) is LexiconAction.ALLOW
    assert config.lexicon.action(Severity.SEVERE) is LexiconAction.REVIEW
    assert config.lexicon.action(Severity.STRONG) is LexiconAction.REDACT


# --- in the Moderator ---------------------------------------------------------------------------------------


class _Recording:
    """A scorer that remembers what it was given and scores profanity high wherever a listed word is left."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        self.seen.extend(texts)
        return [{Category.PROFANITY: 0.99 if default_lexicon().find(t) else 0.01} for t in texts]


def _moderator(policy: LexiconPolicy | None = None) -> tuple[OutputModerator, _Recording]:
    scorer = _Recording()
    return OutputModerator(PatternSet([], layer="moderator"), [scorer], ThresholdPolicy(), None, policy), scorer


def test_output_moderator_masks_a_mild_word_and_allows_the_answer() -> None:
    moderator, scorer = _moderator()
    text = "Damn, the build failed again."
    (verdict,) = moderator.moderate([text])
    assert (verdict.action, verdict.layer) == (Action.ALLOW, "moderator")
    assert verdict.reasons == ("redacted:profanity:mild",)
    assert apply_redactions(text, verdict.redactions) == "D***, the build failed again."
    assert scorer.seen == ["D***, the build failed again."]  # the models judge what is delivered


def test_output_moderator_blocks_a_slur_as_hate() -> None:
    moderator, _ = _moderator()
    (verdict,) = moderator.moderate(["Damn, he called them a w.e.t.b.a.c.k."])
    assert (verdict.action, verdict.category, verdict.layer) == (Action.BLOCK, Category.HATE, "moderator")
    assert verdict.redactions == () and "lexicon:hate:severe" in verdict.reasons


def test_output_moderator_leaves_allowed_words_to_the_models() -> None:
    moderator, scorer = _moderator(LexiconPolicy(mild=LexiconAction.ALLOW))
    (verdict,) = moderator.moderate(["Damn, the build failed again."])
    assert scorer.seen == ["Damn, the build failed again."]
    assert verdict.action is Action.BLOCK and verdict.reasons == ("model:profanity=0.990",)


def test_output_moderator_merges_lexicon_and_personal_data_redactions() -> None:
    moderator, _ = _moderator()
    text = "Shit, write to fuck.off@example.org or damn@example.org, damn it."
    assessment = moderator.assess([text])[0]
    verdict = assessment.verdict
    assert verdict.action is Action.ALLOW
    assert [r.kind for r in verdict.redactions] == ["profanity:strong", "email", "email", "profanity:mild"]
    assert apply_redactions(text, verdict.redactions) == "S***, write to [email] or [email], d*** it."
    assert verdict.reasons == ("redacted:profanity:strong", "redacted:email", "redacted:profanity:mild")
    assert assessment.rules.action is Action.ALLOW and assessment.score == 0.01


def test_merge_redactions_keeps_the_earlier_group_on_overlap() -> None:
    email = Redaction("email", Category.PRIVACY, 10, 30, "[email]")
    inside = Redaction("profanity:strong", Category.PROFANITY, 10, 14, "f***")
    before = Redaction("profanity:mild", Category.PROFANITY, 0, 4, "d***")
    assert merge_redactions([email], [inside, before]) == (before, email)
    assert merge_redactions([], [before]) == (before,)
