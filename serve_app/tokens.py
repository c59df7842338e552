"""Token counts for the limits, with the served model's own tokenizer (its `tokenizer.json`).

What a request reserves is counted here, in the ingress, before the Generator sees it: each message's text
plus a few tokens of chat-template framing per message. The Generator's exact counts settle the difference
once the answer is complete (serve_app/limits.py). A moderated stream is cut into tokens here too, so that
its hold-back window counts tokens whatever size of piece the Generator sends (serve_app/streaming.py).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from classifiers.paths import resolve_model_path

PER_MESSAGE_TOKENS = 4  # role markers and separators of a chat template, as OpenAI's own estimate counts them


@lru_cache(maxsize=4)
def _load(path: Path) -> Tokenizer:
    file = path / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"no tokenizer.json in {path}: set the ingress's tokenizer_path to the served model")
    return Tokenizer.from_file(str(file))


class TokenCounter:
    def __init__(self, tokenizer_path: str) -> None:
        self._tokenizer = _load(resolve_model_path(tokenizer_path))

    def count(self, texts: list[str]) -> int:
        """Tokens of these texts as separate messages (0 for none)."""
        if not texts:
            return 0
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return sum(len(e.ids) for e in encodings) + PER_MESSAGE_TOKENS * len(texts)

    def length(self, text: str) -> int:
        """Tokens of one text, without framing."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids) if text else 0

    def split(self, text: str) -> list[str]:
        """`text` cut at its token boundaries (joined, the parts are `text`). The tokens of one character (a
        byte-level BPE splits an emoji into several) stay one part."""
        ends = sorted({end for _, end in self._tokenizer.encode(text, add_special_tokens=False).offsets})
        cuts = [end for end in ends if 0 < end < len(text)] + [len(text)]
        parts, start = [], 0
        for cut in cuts:
            if cut > start:
                parts.append(text[start:cut])
                start = cut
        return parts
