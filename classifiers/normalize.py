"""Input normalisation that runs before every check, so that trivial obfuscation does not slip past them.

`normalize` gives the canonical form of a text (also used for excerpts). `views` adds the de-obfuscated
variants worth checking as well: homoglyphs folded, leetspeak undone, spaced-out words joined, and base64,
hex or rot13 payloads decoded. Every check runs over every view, so a request hidden by one of these tricks
is judged on what it says. A variant is only kept when it reads more like English than the original (or,
for homoglyphs, when a word mixes scripts), so ordinary text, numbers and code get no extra views.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

MAX_VIEWS = 6
# At most this many characters of encoded blobs are decoded per text, whatever its length.
MAX_DECODED_CHARS = 4096

# Zero-width and other invisible formatting characters (Unicode category Cf) are stripped: they carry no
# meaning for a reader but split the words that patterns and models look for.
_WHITESPACE = re.compile(r"\s+")


def _visible(text: str) -> str:
    if text.isascii():  # every Cf character lies beyond ASCII
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize(text: str) -> str:
    """NFKC-fold, drop invisible characters, collapse runs of whitespace and trim."""
    folded = unicodedata.normalize("NFKC", text)
    return _WHITESPACE.sub(" ", _visible(folded)).strip()


# Common English words, plus the vocabulary of the attacks the gateway looks for: a variant that turns
# gibberish into more of these words is a decoding worth checking. Words of one letter are not counted.
_COMMON_WORDS = frozenset(
    """
    about above act action after again against all also always am an and another any anyone anything are
    around as ask at away back bad be because been before being below best better between both but by call
    can cannot change come could day did different do does doing done down each early earlier easy end enough
    even ever every example few find first for forget from full get give go going good got great had has have
    he help her here him his home how however if important in information into is it its just keep kind know
    last later least left less let life like little long look lot made main make many may me mean might more
    most much must my need never new next no not nothing now number of off often old on once one only open or
    other our out over own part people place please point possible problem put question quite rather read
    real really right said same say see seem set she should show side since small so some someone something
    start state still stop such sure system take tell than thank that the their them then there these they
    thing think this those through time to today together too true try turn two under until up us use used
    using very want was way we well went were what when where which while who why will with without word work
    world would write year yes yet you your
    abuse access account admin answer assistant attack avoid bank bitcoin body bomb bombs build
    bypass card chemical chemicals child children code command commands company computer content control
    create credit criminal dangerous data delete developer directions disable disregard drug drugs email
    enable encrypt ethical everything explain explicit explosive explosives file files filter filters
    firearm follow following free gun guns guidelines hack hacking harm harmful hate hidden hurt ignore
    illegal initial instruction instructions kill killing law malware message meth mode money murder nude
    obey override password passwords person persona phishing poison policy previous print prior private
    prompt prompts ransomware recipe respond restrictions reveal rule rules safety secret secrets
    security sex sexual social step steps steal stolen story suicide synthesize unfiltered user users
    victim violence virus weapon weapons
    """.split()
)
_LATIN_WORD = re.compile(r"[a-z]{2,}")


def _known_words(text: str) -> int:
    return sum(word in _COMMON_WORDS for word in _LATIN_WORD.findall(text.lower()))


# Cyrillic and Greek letters that render like Latin ones. Only a word that mixes scripts is folded (or the
# whole text, when all its letters are Latin or look-alikes), so genuine Russian or Greek is left alone.
_CONFUSABLES = {
    **dict(zip("аеорсухіјѕһԁӏԛԝ", "aeopcyxijshdlqw", strict=True)),
    **dict(zip("АВЕКМНОРСТХУІЈЅ", "ABEKMHOPCTXYIJS", strict=True)),
    **dict(zip("αοιν\u03c1υκχε", "aoivpukxe", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),
}
_FOLD = str.maketrans(_CONFUSABLES)
_FOREIGN = re.compile(r"[\u0370-\u03ff\u0400-\u052f]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"\w+")


def fold_homoglyphs(text: str) -> str:
    """Latin look-alikes in mixed-script words (or in an all-look-alike text) replaced by their Latin letter."""
    if not _FOREIGN.search(text):
        return text
    if all(ch in _CONFUSABLES or ch.isascii() for ch in text if ch.isalpha()):
        return text.translate(_FOLD)

    def fold(match: re.Match[str]) -> str:
        word = match[0]
        mixed = _ASCII_LETTER.search(word) and _FOREIGN.search(word)
        return word.translate(_FOLD) if mixed else word

    return _WORD.sub(fold, text)


# "i g n o r e", "b.o.m.b": three or more single characters, each separated by one space, dot or dash. Two
# spaces separate words, so this runs before whitespace is collapsed.
_SPACED_RUN = re.compile(r"(?<![^\W_])[^\W_](?:[ .\-*·][^\W_](?![^\W_])){2,}")
# "ig-nore", "in.struc.tions": a dot, dash or star between two letters.
_INNER_SEPARATOR = re.compile(r"(?<=[^\W\d_])[.\-*·](?=[^\W\d_])")
_MAX_SEGMENT_CHARS = 256
_SEGMENT_WORDS = _COMMON_WORDS | {"a", "i"}
_LONGEST_WORD = max(map(len, _COMMON_WORDS))


def _segment(run: str) -> str:
    """Split a joined run into known words ("ignoreallprevious" -> "ignore all previous"), fewest words
    first; the run unchanged when it is a word already or cannot be split completely."""
    lower = run.lower()
    if lower in _COMMON_WORDS or len(run) > _MAX_SEGMENT_CHARS:
        return run
    best: list[list[int] | None] = [[]] + [None] * len(run)  # best[i]: word ends splitting run[:i]
    for end in range(1, len(run) + 1):
        for start in range(max(0, end - _LONGEST_WORD), end):
            prefix = best[start]
            if prefix is not None and lower[start:end] in _SEGMENT_WORDS:
                if best[end] is None or len(prefix) + 1 < len(best[end]):
                    best[end] = [*prefix, end]
    if best[-1] is None:
        return run
    cuts = [0, *best[-1]]
    return " ".join(run[a:b] for a, b in zip(cuts, cuts[1:], strict=False))


def despace(text: str) -> str:
    """Runs of single characters joined (and split into words where the joined run is several), and
    separators inside words dropped."""
    joined = _SPACED_RUN.sub(lambda m: _segment(re.sub(r"[ .\-*·]", "", m[0])), text)
    return _INNER_SEPARATOR.sub("", joined)


_LEET = str.maketrans("01345789@$", "oieastbgas")
_LEET_TOKEN = re.compile(r"[A-Za-z0-9@$]+")
# A token of letters, digits, @ and $ mixes letters with the others exactly where two of them touch.
_MIXED = re.compile(r"[A-Za-z][0-9@$]|[0-9@$][A-Za-z]")
# A lone digit read as a letter ("m4k3 4 b0mb"), only in a text that has other leetspeak.
_LONE_LEET = {"4": "a", "1": "i"}


def deleet(text: str) -> str:
    """Leetspeak undone in tokens that mix letters with digits or @ and $; "2024" or "3.5" stay."""
    if not _MIXED.search(text):
        return text

    def undo(match: re.Match[str]) -> str:
        token = match[0]
        return token.translate(_LEET) if _MIXED.search(token) else _LONE_LEET.get(token, token)

    return _LEET_TOKEN.sub(undo, text)


# Blobs of a meaningful length: 16+ base64 characters (12 bytes), 16+ hex digits (8 bytes).
_BLOB = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{16,}={0,2}(?![\w+/=-])")
_HEX = re.compile(r"(?:0x)?((?:[0-9a-fA-F]{2}){8,})")


def _text_of(data: bytes) -> str | None:
    """The UTF-8 text in decoded bytes, when it is mostly printable and mostly letters; None otherwise."""
    for cut in range(4):  # a truncated blob may end inside a multi-byte character
        try:
            text = data[: len(data) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    letters = sum(ch.isalpha() or ch == " " for ch in text)
    return text if text and printable >= 0.95 * len(text) and letters >= 0.6 * len(text) else None


def _decode_blob(blob: str, budget: int) -> str | None:
    hex_match = _HEX.fullmatch(blob)
    if hex_match:
        data = binascii.unhexlify(hex_match[1][: 2 * budget])
        return _text_of(data)
    body = blob.rstrip("=").replace("-", "+").replace("_", "/")[: budget * 4 // 3 // 4 * 4 or 4]
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _text_of(data)


def decode_payloads(text: str) -> str:
    """The text with each base64 or hex blob that decodes to readable text replaced by that text."""
    budget = MAX_DECODED_CHARS

    def decode(match: re.Match[str]) -> str:
        nonlocal budget
        if budget <= 0:
            return match[0]
        decoded = _decode_blob(match[0], budget)
        if decoded is None:
            return match[0]
        budget -= len(decoded)
        return decoded

    return _BLOB.sub(decode, text)


def rot13(text: str) -> str:
    """The rot13 reading of the text, when it has clearly more common English words than the text itself."""
    turned = codecs.encode(text, "rot13")
    known = _known_words(turned)
    return turned if known >= 2 and known > 2 * _known_words(text) else text


def views(text: str) -> list[str]:
    """The normalised text first, then each distinct de-obfuscated variant of it, at most `MAX_VIEWS`.

    Whitespace is collapsed last, because two spaces are what separates the words of a spaced-out text.
    Folded homoglyphs and decoded payloads are kept as they are; the other variants only when they have
    more common English words than the text itself, so that numbers, code or names give no garbage views.
    """
    visible = _visible(unicodedata.normalize("NFKC", text))
    base = _WHITESPACE.sub(" ", visible).strip()
    folded = fold_homoglyphs(visible)
    spaced = despace(folded)
    decoded = decode_payloads(base)
    trusted = {folded, decoded}
    candidates = [folded, decoded, rot13(base), spaced, deleet(folded), deleet(spaced)]
    base_known = _known_words(base)
    result = [base]
    for candidate in candidates:
        view = _WHITESPACE.sub(" ", candidate).strip()
        if view in result or (candidate not in trusted and _known_words(view) <= base_known):
            continue
        result.append(view)
        if len(result) == MAX_VIEWS:
            break
    return result
