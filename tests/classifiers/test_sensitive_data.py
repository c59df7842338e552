"""Secrets and personal data: each kind found, look-alikes left alone, and the redact/block/allow policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from classifiers.moderation import OutputModerator
from classifiers.patterns import PatternSet
from classifiers.policy import PatternRule, ThresholdPolicy
from classifiers.sensitive_data import (
    Kind,
    SensitiveAction,
    SensitiveDataPolicy,
    find,
    iban_valid,
    luhn_valid,
    redact_all,
)
from classifiers.taxonomy import Category
from classifiers.verdict import Action, apply_redactions

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

POSITIVES = [
    (Kind.PRIVATE_KEY, "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"),
    (Kind.PRIVATE_KEY, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"),
    (Kind.PRIVATE_KEY, "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"),
    (Kind.AWS_ACCESS_KEY, "AKIAIOSFODNN7EXAMPLE"),
    (Kind.OPENAI_KEY, "sk-abcdefghijklmnop1234"),
    (Kind.OPENAI_KEY, "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx_12"),
    (Kind.GITHUB_TOKEN, "ghp_" + "aB3" * 12),
    (Kind.GITHUB_TOKEN, "gho_" + "Z9y" * 12),
    (Kind.SLACK_TOKEN, "xoxb-123456789012-abcdefABCDEF"),
    (Kind.SLACK_TOKEN, "xoxp-1234-5678-abcdefghij"),
    (Kind.JWT, JWT),
    (Kind.SAFESERVE_KEY, "ss-3f9c0a1b2c3d-" + "Ab_-9" * 9),
    (Kind.EMAIL, "jane.doe+news@example.co.uk"),
    (Kind.PHONE, "+44 20 7946 0958"),
    (Kind.PHONE, "+1 (415) 555-2671"),
    (Kind.PHONE, "+33 1 23 45 67 89"),
    (Kind.PHONE, "+14155552671"),
    (Kind.PHONE, "(415) 555-2671"),
    (Kind.PHONE, "415-555-2671"),
    (Kind.PHONE, "1-800-555-0199"),
    (Kind.PHONE, "020 7946 0958"),
    (Kind.PHONE, "07700 900123"),
    (Kind.CARD, "4111 1111 1111 1111"),
    (Kind.CARD, "4111-1111-1111-1111"),
    (Kind.CARD, "5500005555555559"),
    (Kind.CARD, "378282246310005"),
    (Kind.SSN, "123-45-6789"),
    (Kind.UK_NI, "AB 12 34 56 C"),
    (Kind.UK_NI, "AB123456C"),
    (Kind.IBAN, "GB82 WEST 1234 5698 7654 32"),
    (Kind.IBAN, "DE89370400440532013000"),
]


@pytest.mark.parametrize(("kind", "value"), POSITIVES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(POSITIVES)])
def test_each_kind_is_found_with_its_exact_span(kind: Kind, value: str) -> None:
    text = f"Here it is: {value} - keep it safe."
    (finding,) = find(text)
    assert finding.kind is kind
    assert text[finding.start : finding.end] == value
    assert finding.category is (Category.PRIVACY if kind in _PERSONAL else Category.SECRETS)


_PERSONAL = {Kind.EMAIL, Kind.PHONE, Kind.CARD, Kind.SSN, Kind.UK_NI, Kind.IBAN}


@pytest.mark.parametrize(
    "text",
    [
        "card 4111111111111112",  # card prefix and length, fails the Luhn check
        "card 4111 1111 1111 1112",
        "Order #1234567890123456 shipped",
        "order 98765-4321, invoice 2024-000123",
        "version 1.2.3.4, v10.15.7, python 3.12.1",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "commit e83c5163316f89bfbde7d9ab23ca2e25604af290",
        "ISBN 978-3-16-148410-0, 9780306406157, 0-306-40615-2",
        "on 2024-01-15, 15/01/2024, 15.01.2024 or 2024-01-15T10:30:00Z",
        "it costs $1,299.00, €12.99 or 1 234 567.89",
        "SSNs 000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000",
        "NI QQ123456C is the documentation example",  # QQ is not an allowed prefix
        "IBAN GB82 WEST 1234 5698 7654 33",  # fails mod-97
        "host 192.168.100.100, epoch 1700000000000",
        "call extension 555-1234",
        "task-abcdefghijklmnopqrstuvwxyz and sk-short",
        "akia lowercase akiaiosfodnn7example",
    ],
)
def test_look_alikes_are_not_found(text: str) -> None:
    assert find(text) == []


def test_checks() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 23")


def test_findings_do_not_overlap_and_secrets_win() -> None:
    text = f"token {JWT} mail bob@example.com card 4111111111111111"
    assert [f.kind for f in find(text)] == [Kind.JWT, Kind.EMAIL, Kind.CARD]


def test_redact_all_masks_every_kind_with_its_placeholder() -> None:
    text = "Mail a@b.io or call 020 7946 0958; SSN 123-45-6789; key AKIAIOSFODNN7EXAMPLE."
    assert redact_all(text) == "Mail [email] or call [phone]; SSN [ssn]; key [secret]."


def test_default_policy_blocks_secrets_and_redacts_personal_data() -> None:
    policy = SensitiveDataPolicy()
    assert {policy.action(kind) for kind in Kind if kind not in _PERSONAL} == {SensitiveAction.BLOCK}
    assert {policy.action(kind) for kind in _PERSONAL} == {SensitiveAction.REDACT}

    blocked = policy.check("use AKIAIOSFODNN7EXAMPLE and mail a@b.io", layer="t")
    assert (blocked.action, blocked.category) == (Action.BLOCK, Category.SECRETS)
    assert blocked.reasons == ("sensitive:aws_access_key",) and blocked.redactions == ()

    text = "Write to jane@example.org or pay with 4111 1111 1111 1111."
    redacted = policy.check(text, layer="t")
    assert redacted.action is Action.ALLOW
    assert [r.kind for r in redacted.redactions] == ["email", "card"]
    assert redacted.scores == {Category.PRIVACY: 1.0}
    assert apply_redactions(text, redacted.redactions) == "Write to [email] or pay with [card]."

    assert policy.check("nothing to see", layer="t").redactions == ()


def test_policy_overrides_and_validation() -> None:
    policy = SensitiveDataPolicy.model_validate({"actions": {"email": "allow", "card": "block"}})
    assert policy.action(Kind.EMAIL) is SensitiveAction.ALLOW
    assert policy.action(Kind.PHONE) is SensitiveAction.REDACT  # left out: the default
    verdict = policy.check("mail a@b.io", layer="t")
    assert verdict.action is Action.ALLOW and verdict.redactions == () and verdict.scores == {}
    assert policy.check("card 4111111111111111", layer="t").category is Category.PRIVACY
    with pytest.raises(ValidationError):
        SensitiveDataPolicy.model_validate({"actions": {"passport": "redact"}})
    with pytest.raises(ValidationError):
        SensitiveDataPolicy.model_validate({"actions": {"email": "hide"}})


class _Scores:
    def __init__(self, scores: dict[Category, float]) -> None:
        self.scores = scores

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        return [dict(self.scores) for _ in texts]


def _moderator(scores: dict[Category, float] | None = None) -> OutputModerator:
    return OutputModerator(PatternSet([], layer="moderator"), [_Scores(scores or {})], ThresholdPolicy())


def test_output_moderator_blocks_secrets_and_returns_redactions() -> None:
    secret, personal, clean = _moderator().moderate(
        ["your key is sk-abcdefghijklmnop1234", "reach me at jane@example.org", "hello"]
    )
    assert (secret.action, secret.category, secret.layer) == (Action.BLOCK, Category.SECRETS, "moderator")
    assert personal.action is Action.ALLOW and [r.kind for r in personal.redactions] == ["email"]
    assert personal.reasons == ("redacted:email",)
    assert clean.action is Action.ALLOW and clean.redactions == () and clean.reasons == ()


def test_output_moderator_drops_redactions_when_a_model_blocks() -> None:
    (verdict,) = _moderator({Category.HARASSMENT: 0.99}).moderate(["you idiot, mail jane@example.org"])
    assert verdict.action is Action.BLOCK and verdict.category is Category.HARASSMENT
    assert verdict.redactions == () and not any(r.startswith("redacted:") for r in verdict.reasons)


def test_output_moderator_locates_what_its_rules_match_for_reviewers() -> None:
    rule = PatternRule(name="passage", category=Category.VIOLENCE, action=Action.BLOCK, pattern="unsafe passage")
    moderator = OutputModerator(PatternSet([rule], layer="moderator"), [], ThresholdPolicy())
    text = "An unsafe passage; mail jane@example.org, you shit."
    marked = sorted(text[start:end] for start, end in moderator.rule_spans(text))
    assert marked == ["jane@example.org", "shit", "unsafe passage"]
    assert moderator.rule_spans("A calm, helpful answer.") == []
