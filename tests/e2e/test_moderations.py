"""/v1/moderations runs the output moderation stack and answers in the OpenAI format."""

from __future__ import annotations

import openai
import pytest

from classifiers.taxonomy import OPENAI_MODERATION_CATEGORIES

pytestmark = pytest.mark.e2e


def test_toxic_text_is_flagged_and_clean_text_passes(client: openai.OpenAI) -> None:
    result = client.moderations.create(
        input=[
            "You are a worthless idiot and everyone hates you, you stupid piece of shit.",
            "Thank you for the lovely dinner, see you next week!",
        ]
    )
    toxic, clean = result.results
    assert toxic.flagged is True
    assert toxic.categories.harassment is True
    assert toxic.category_scores.harassment > 0.5
    assert clean.flagged is False
    assert not any(clean.categories.model_dump().values())


def test_short_answers_are_not_flagged(client: openai.OpenAI) -> None:
    """One-word answers and greetings once went to review as harassment (0.5-0.8), and the review penalties
    fed the reputation loop that suspended a benign user."""
    texts = ["Red", "Blue", "Hello there", "I", "Yes.", "Name a colour."]
    results = client.moderations.create(input=texts).results
    assert [r.flagged for r in results] == [False] * len(texts)
    assert max(r.category_scores.harassment for r in results) < 0.2


def test_moderation_answers_every_openai_category(client: openai.OpenAI) -> None:
    response = client.moderations.with_raw_response.create(input="A quiet afternoon in the park.").http_response
    stages = response.headers["server-timing"]
    assert "moderate;dur=" in stages and "total;dur=" in stages  # what bench.latency --moderations reads
    raw = response.json()
    result = raw["results"][0]
    assert set(result["categories"]) == set(OPENAI_MODERATION_CATEGORIES)
    assert set(result["category_scores"]) == set(OPENAI_MODERATION_CATEGORIES)
    assert result["safeserve_action"] == "allow"


def test_private_key_in_text_is_blocked(client: openai.OpenAI) -> None:
    raw = client.moderations.with_raw_response.create(
        input="here you go: -----BEGIN RSA PRIVATE KEY-----\nMIIEow..."
    ).http_response.json()
    assert raw["results"][0]["flagged"] is True
    assert raw["results"][0]["safeserve_action"] == "block"
    assert raw["results"][0]["safeserve_categories"]["secrets"] == 1.0


def test_personal_data_is_listed_for_redaction_and_an_aws_key_is_blocked(client: openai.OpenAI) -> None:
    raw = client.moderations.with_raw_response.create(
        input=[
            "Write to jane.doe@example.org; the card on file is 4111 1111 1111 1111.",
            "Use access key AKIAIOSFODNN7EXAMPLE for the bucket.",
            "Order 4111111111111112 ships on 2024-01-15.",
        ]
    ).http_response.json()
    personal, secret, lookalike = raw["results"]
    assert personal["safeserve_redactions"] == ["email", "card"]
    assert personal["safeserve_action"] == "allow" and personal["flagged"] is False
    assert personal["safeserve_categories"]["privacy"] == 1.0
    assert secret["flagged"] is True and secret["safeserve_action"] == "block"
    assert secret["safeserve_categories"]["secrets"] == 1.0 and secret["safeserve_redactions"] == []
    # Not a card (fails Luhn): nothing redacted, and privacy only at the answer check's low model score.
    assert lookalike["safeserve_redactions"] == [] and lookalike["safeserve_categories"].get("privacy", 0.0) < 0.5
