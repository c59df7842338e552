"""Whether a text speaks of a group of people by a protected trait (origin, religion, sex and gender, sexual
orientation, disability, age).

Hate is about how a text speaks of such a group, often in words no swear-word list or n-gram model trained on
comments recognises ("they are all ..."). So a text that names a group is read by the Moderator's model
members whatever its cheap scores, and a toxic score on it counts as `hate` rather than `harassment`.
"""

from __future__ import annotations

import re

_TERMS = (
    # origin, nationality, ethnicity
    r"africans?|african[- ]americans?|americans?|arabs?|asians?|blacks?|black (?:people|men|women|folks?)|"
    r"brown people|caucasians?|chinese|europeans?|hispanics?|immigrants?|migrants?|refugees?|indians?|"
    r"native americans?|indigenous|aborigin\w*|latin[oaxe]s?|mexicans?|middle[- ]eastern\w*|whites?|"
    r"white (?:people|men|women|folks?)|japanese|koreans?|russians?|jews?|jewish|gypsies|gypsy|roma|"
    r"foreigners?|minorit(?:y|ies)|races?|racial|ethnic\w*|"
    # religion
    r"muslims?|islam\w*|christians?|christianity|catholics?|hindus?|sikhs?|buddhists?|atheists?|mormons?|"
    r"religio\w*|"
    # sex, gender, sexual orientation
    r"women|woman|girls?|females?|men|males?|boys|feminists?|gays?|lesbians?|bisexuals?|homosexual\w*|"
    r"heterosexual\w*|lgbt\w*|queer|trans|transgender\w*|transsexual\w*|non-?binary|gender\w*|"
    # disability, age
    r"disabled|disabilit\w*|handicapped|wheelchair|blind people|deaf|autis\w*|down(?:'s)? syndrome|"
    r"mentally ill|mental illness|mental disabilit\w*|elderly|old people|boomers?|millennials?"
)
GROUP_MENTION = re.compile(rf"\b(?:{_TERMS})\b", re.IGNORECASE)


def names_a_group(text: str) -> bool:
    return GROUP_MENTION.search(text) is not None
