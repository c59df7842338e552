"""The ingress's token counts and token cuts, with the served model's own tokenizer (SmolLM2's)."""

from __future__ import annotations

import pytest

from serve_app.tokens import TokenCounter


@pytest.fixture(scope="module")
def tokens(models_dir) -> TokenCounter:
    return TokenCounter("smollm2/hf")


@pytest.mark.parametrize(
    "text", [" clean-01 clean-02 clean-03", "Hello world", "  two  spaces", " café 😀 ok", "x", ""]
)
def test_a_piece_is_cut_at_its_token_boundaries_and_nothing_is_lost(tokens: TokenCounter, text: str) -> None:
    parts = tokens.split(text)
    assert "".join(parts) == text and all(parts)
    assert len(parts) <= tokens.length(text)


def test_a_multi_token_chunk_becomes_one_part_per_token(tokens: TokenCounter) -> None:
    # Words, hyphens and digits are separate tokens: one upstream chunk of two words is eight.
    assert tokens.split(" clean-01 clean-02") == [" clean", "-", "0", "1", " clean", "-", "0", "2"]
    assert tokens.length(" clean-01 clean-02") == 8


def test_the_bytes_of_one_character_stay_together(tokens: TokenCounter) -> None:
    # A byte-level BPE spends two tokens on this emoji; cutting between them would split the character.
    assert tokens.split(" 😀 ok") == [" 😀", " ok"] and tokens.length(" 😀 ok") == 3
