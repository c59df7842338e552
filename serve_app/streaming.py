"""The hold-back window of a moderated stream, as pure logic (no Ray, no I/O) so it can be tested alone.

Each generated piece is cut into tokens (`split`: the ingress's tokenizer), which wait in `pending` until the
Moderator has checked the whole text (released + pending); then all but the newest `holdback` tokens are
released, so the window holds tokens whatever size of piece the generator sends. Redactions are applied on release:
- a span wholly inside the text about to be released is replaced by its placeholder (that release goes out
  as one chunk);
- a span that reaches past the release boundary holds the release back until the span is wholly pending;
- a span that starts inside text already sent (and is not one already redacted there) cannot be retracted:
  the stream must end with `content_filter` (`advance` returns None);
- a secret's prefix (`sk-`, `ghp_`, `AKIA`, `eyJ`, ...) or a run of 4+ digits still open at the end of the
  checked text is not released: its first tokens match no detector yet (classifiers/sensitive_data.py).

The window also keeps the strongest verdict any check drew (`flag`): text a check sent to review has been
released, so that verdict is recorded for the answer even when no later check repeats it or the stream never
reaches its end (`answer_verdict`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from classifiers.sensitive_data import open_tail_start
from classifiers.verdict import Action, Redaction, Verdict, apply_redactions


def _whole(piece: str) -> list[str]:
    return [piece]


@dataclass
class StreamWindow:
    holdback: int
    split: Callable[[str], list[str]] = _whole  # a generated piece cut into tokens (joined, they are the piece)
    released: str = ""  # the original text of everything sent so far (sent redacted where redactions applied)
    pending: list[str] = field(default_factory=list)  # tokens
    flagged: Verdict | None = None  # the strongest non-allow verdict of a check so far
    _settled: set[tuple[str, int, int]] = field(default_factory=set)

    def add(self, piece: str) -> int:
        """Queue a generated piece as its tokens; how many it was."""
        tokens = self.split(piece)
        self.pending.extend(tokens)
        return len(tokens)

    @property
    def text(self) -> str:
        """The text to moderate: everything generated so far, as generated."""
        return self.released + "".join(self.pending)

    def unretractable(self, redactions: tuple[Redaction, ...]) -> list[Redaction]:
        """Redactions of `text` that start in text already sent and were not applied when it was sent."""
        return [r for r in redactions if r.start < len(self.released) and (r.kind, r.start, r.end) not in self._settled]

    def advance(
        self, redactions: tuple[Redaction, ...], final: bool = False, checked: int | None = None
    ) -> list[str] | None:
        """The chunks to send now after a check that found `redactions`; None: end the stream.

        The check covered the released text and the first `checked` pending tokens (all of them when None:
        tokens may have arrived while it ran); of those, all but the newest `holdback` are released. `final`
        releases everything checked (the generator is done)."""
        if self.unretractable(redactions):
            return None
        base = len(self.released)
        covered = len(self.pending) if checked is None else min(checked, len(self.pending))
        cut = covered if final else max(covered - self.holdback, 0)
        if not final:
            cut = self._before_open_tail(covered, cut)
        boundary = base + sum(len(piece) for piece in self.pending[:cut])
        fresh = [r for r in redactions if r.start >= base]
        if any(r.start < boundary < r.end for r in fresh):
            return []
        inside = [r for r in fresh if r.end <= boundary]
        ready = self.pending[:cut]
        del self.pending[:cut]
        original = "".join(ready)
        self.released += original
        if not inside:
            return ready
        self._settled.update((r.kind, r.start, r.end) for r in inside)
        shifted = [replace(r, start=r.start - base, end=r.end - base) for r in inside]
        return [apply_redactions(original, shifted)]

    def _before_open_tail(self, covered: int, cut: int) -> int:
        """`cut`, pulled back so that no token of a secret's prefix or a digit run still open at the end of the
        checked text is released: the check saw only its beginning, which no detector matches yet."""
        checked_text = self.released + "".join(self.pending[:covered])
        start = open_tail_start(checked_text)
        if start is None:
            return cut
        end = len(self.released)
        for k, piece in enumerate(self.pending[:cut]):
            end += len(piece)
            if end > start:
                return k
        return cut

    def flag(self, verdict: Verdict) -> None:
        """Keep `verdict` if it is the strongest a check of this stream has drawn (by action, then score): a
        longer text can score below the review band that a part of it reached, and the client may leave before
        the whole answer is judged."""
        if verdict.action is Action.ALLOW:
            return
        if self.flagged is None or (verdict.action.rank, verdict.score) > (
            self.flagged.action.rank,
            self.flagged.score,
        ):
            self.flagged = verdict

    def answer_verdict(self, verdict: Verdict) -> Verdict:
        """The verdict to record for the whole answer, given the final check's: that one, unless an earlier check
        drew a stronger action; then the earlier one, with the final check's redactions (they are of the whole
        text, which is what is released last)."""
        if self.flagged is None or verdict.action.rank >= self.flagged.action.rank:
            return verdict
        return replace(self.flagged, redactions=verdict.redactions)

    def release(
        self, verdict: Verdict, final: bool = False, checked: int | None = None
    ) -> tuple[list[str] | None, Verdict]:
        """`advance` after a Moderator check of the text with `checked` pending pieces: the chunks to send
        (None: end the stream with `content_filter`), and the verdict to record, a block when a redaction could
        not be applied. A verdict short of a block is kept if it is the strongest so far (`flag`)."""
        if verdict.action is Action.BLOCK:
            return None, verdict
        chunks = self.advance(verdict.redactions, final=final, checked=checked)
        if chunks is None:
            return None, unretractable_verdict(verdict, self.unretractable(verdict.redactions))
        self.flag(verdict)
        return chunks, verdict


def unretractable_verdict(verdict: Verdict, redactions: list[Redaction]) -> Verdict:
    """The block decision recorded when a redaction would have to reach into text already sent."""
    first = redactions[0]
    return replace(
        verdict,
        action=Action.BLOCK,
        category=first.category,
        score=1.0,
        flagged=verdict.flagged | {r.category for r in redactions},
        reasons=verdict.reasons + tuple(dict.fromkeys(f"unretractable:{r.kind}" for r in redactions)),
        redactions=(),
    )
