"""The hold-back window of a moderated stream: redaction on release, and the cut when it is too late."""

from __future__ import annotations

import re
from dataclasses import replace

from classifiers.lexicon import LexiconPolicy
from classifiers.sensitive_data import SensitiveDataPolicy
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict
from serve_app.streaming import StreamWindow

POLICY = SensitiveDataPolicy()


def check(window: StreamWindow, final: bool = False) -> tuple[list[str] | None, Verdict]:
    return window.release(POLICY.check(window.text, layer="moderator"), final=final)


def feed(window: StreamWindow, pieces: list[str]) -> None:
    for piece in pieces:
        window.add(piece)


def test_the_window_holds_tokens_whatever_the_size_of_a_piece() -> None:
    window = StreamWindow(holdback=3, split=lambda piece: re.findall(r"\s*\S+", piece))  # a "token" per word
    assert window.add("one two three four five") == 5 and window.add(" six") == 1
    ready, _ = check(window)
    assert ready == ["one", " two", " three"] and window.pending == [" four", " five", " six"]


def test_clean_text_is_released_piece_by_piece_behind_the_holdback() -> None:
    window = StreamWindow(holdback=2)
    feed(window, ["The ", "sky ", "is ", "blue."])
    assert check(window)[0] == ["The ", "sky "]
    assert check(window, final=True)[0] == ["is ", "blue."]


def test_a_span_inside_the_pending_text_is_released_redacted() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["Mail ", "jane", "@example", ".org", " today", "!"])
    chunks, verdict = check(window)
    assert chunks == ["Mail [email] today"] and verdict.action is Action.ALLOW
    # The released email is settled: later checks of the whole text see it again and carry on.
    feed(window, [" Or ", "call", " later"])
    assert check(window)[0] == ["!", " Or ", "call"]
    assert check(window, final=True)[0] == [" later"]


def test_a_span_across_the_release_boundary_holds_the_release_back() -> None:
    window = StreamWindow(holdback=3)
    feed(window, ["Hi ", "jane", "@example.org", " and", " bye"])
    assert check(window)[0] == []  # the boundary would fall after "jane": nothing goes out yet
    feed(window, [" now"])
    assert check(window)[0] == ["Hi [email]"]
    assert check(window, final=True)[0] == [" and", " bye", " now"]


def test_final_release_redacts_everything_left() -> None:
    window = StreamWindow(holdback=8)
    feed(window, ["Card: ", "4111 1111 ", "1111 1111"])
    assert check(window)[0] == []
    assert check(window, final=True)[0] == ["Card: [card]"]


def test_a_span_that_starts_in_released_text_ends_the_stream() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["Write ", "to ", "jane", ".doe"])
    assert check(window)[0] == ["Write ", "to ", "jane"]  # no email address yet
    feed(window, ["@example.org", " now"])
    chunks, verdict = check(window)
    assert chunks is None
    assert (verdict.action, verdict.category) == (Action.BLOCK, Category.PRIVACY)
    assert "unretractable:email" in verdict.reasons


def test_a_phone_number_is_not_released_while_its_digits_are_still_coming() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["Call ", "020", " 7946", " 0"])
    assert check(window)[0] == ["Call "]  # an open run of digits: nothing of it goes out
    feed(window, ["958", " now", " please"])
    chunks, verdict = check(window)
    assert chunks == ["[phone] now"] and verdict.action is Action.ALLOW


def test_a_block_verdict_ends_the_stream() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["key ", "AKIAIOSFODNN7EXAMPLE", " ok"])
    chunks, verdict = check(window)
    assert chunks is None and verdict.category is Category.SECRETS


def test_a_swear_word_is_released_masked_and_settled() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["Well, ", "sh", "it", " happens", "!"])
    chunks, verdict = window.release(LexiconPolicy().check(window.text, layer="moderator"))
    assert chunks == ["Well, s*** happens"] and verdict.action is Action.ALLOW
    feed(window, [" Again."])
    chunks, _ = window.release(LexiconPolicy().check(window.text, layer="moderator"), final=True)
    assert chunks == ["!", " Again."]


def test_pieces_that_arrived_during_a_check_wait_for_the_next_one() -> None:
    window = StreamWindow(holdback=2)
    feed(window, ["one ", "two ", "three ", "four "])
    verdict = POLICY.check(window.text, layer="moderator")  # the check sees four pieces...
    feed(window, ["five ", "six "])  # ...while two more arrive
    chunks, _ = window.release(verdict, checked=4)
    assert chunks == ["one ", "two "]  # only checked pieces with 2 checked ones after them
    assert window.pending == ["three ", "four ", "five ", "six "]


def test_a_redaction_applies_to_what_the_check_covered_while_later_pieces_wait() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["Mail ", "jane@example.org", " now"])
    verdict = POLICY.check(window.text, layer="moderator")
    feed(window, [" more"])
    chunks, _ = window.release(verdict, checked=3)
    assert chunks == ["Mail [email]"]  # redacted as released; " now" still held, " more" unchecked
    assert window.pending == [" now", " more"]


def test_the_start_of_a_card_number_is_not_released_while_the_number_is_open() -> None:
    """Digits are a token each and a card matches only whole: with a holdback of 2 the first digits of a card
    number went out before the detector could see it (then the stream could only be cut, the digits sent)."""
    window = StreamWindow(holdback=2)
    feed(window, ["Your ", "card ", "is ", *"4111 1111 1111"])
    chunks, _ = check(window)
    assert "".join(chunks) == "Your card is "  # the open run of digits stays back
    feed(window, [*" 1111", " thanks", " for", " asking"])
    chunks, _ = check(window)
    assert "".join(chunks) == "[card] thanks"  # closed, seen whole, released redacted
    assert "4111" not in "".join(chunks)


def test_a_secret_prefix_is_held_until_it_ends() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["Use ", "the ", "key ", "sk-", "proj", "-abc"])
    chunks, _ = check(window)
    assert "".join(chunks) == "Use the key "
    feed(window, ["DEF123456789012345678", " now", " please"])
    chunks, verdict = check(window)
    # Whole, the key is seen and blocks (secrets block by default), and none of it went out before.
    assert chunks is None and verdict.reasons == ("sensitive:openai_key",)
    assert window.released == "Use the key "


def test_a_year_or_a_short_number_is_not_held() -> None:
    window = StreamWindow(holdback=1)
    feed(window, ["In ", "12 ", "steps", " we", " go"])
    assert "".join(check(window)[0]) == "In 12 steps we"


def test_the_strongest_verdict_of_any_check_is_kept_for_the_answer() -> None:
    """A review drawn by one window was dropped when a later check of the longer text allowed it."""
    window = StreamWindow(holdback=1)
    feed(window, ["You ", "are ", "rude ", "today"])
    review = Verdict(layer="moderator", action=Action.REVIEW, category=Category.HARASSMENT, score=0.7)
    assert window.release(review)[0] == ["You ", "are ", "rude "]
    feed(window, [" and ", "mail ", "jane@example.org", " now"])
    allowed = POLICY.check(window.text, layer="moderator")  # the longer text: allowed, with a redaction
    assert window.release(replace(review, score=0.6), checked=2)[0] == ["today"]  # a weaker review
    assert window.release(allowed)[0] is not None
    answer = window.answer_verdict(allowed)
    assert (answer.action, answer.score, answer.redactions) == (Action.REVIEW, 0.7, allowed.redactions)
    blocked = Verdict(layer="moderator", action=Action.BLOCK, category=Category.VIOLENCE, score=0.9)
    assert window.answer_verdict(blocked) is blocked
    later_review = replace(review, score=0.5)
    assert window.answer_verdict(later_review) is later_review  # the final check's own review stands
