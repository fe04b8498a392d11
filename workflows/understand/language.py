"""nl or en: which language to answer in.

Short replies ("Ja, graag!") are beyond any statistical detector, so a tiny word list decides
first when it is clear; lingua (restricted to Dutch and English, built once, lazily, because
loading its models takes a moment) decides longer text; the event's language is the fallback.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_NL_WORDS = frozenset(
    [
        "ja",
        "nee",
        "ik",
        "kom",
        "niet",
        "wel",
        "graag",
        "helaas",
        "de",
        "het",
        "een",
        "en",
        "van",
        "met",
        "voor",
        "mijn",
        "mij",
        "ook",
        "maar",
        "dat",
        "die",
        "is",
        "zijn",
        "ben",
        "kan",
        "zal",
        "wil",
        "deelsessie",
        "collega",
        "groet",
        "dank",
        "bedankt",
        "uitnodiging",
        "aanwezig",
        "verhinderd",
        "afmelden",
        "aanmelden",
        "misschien",
        "waarschijnlijk",
        "er",
        "bij",
        "op",
        "naar",
        "dag",
        "sessie",
    ]
)
_EN_WORDS = frozenset(
    [
        "yes",
        "no",
        "i",
        "will",
        "not",
        "the",
        "a",
        "and",
        "of",
        "with",
        "for",
        "my",
        "me",
        "also",
        "but",
        "that",
        "is",
        "am",
        "be",
        "can",
        "would",
        "like",
        "attend",
        "attending",
        "come",
        "coming",
        "thanks",
        "thank",
        "invitation",
        "unfortunately",
        "maybe",
        "colleague",
        "session",
        "regards",
        "please",
        "there",
        "to",
        "at",
    ]
)
_MIN_WORDS_FOR_LINGUA = 4
_MIN_CONFIDENCE = 0.70


@lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.DUTCH, Language.ENGLISH).build()


def detect_language(text: str, default: str = "nl") -> str:
    words = re.findall(r"[a-zà-ÿ']+", text.lower())
    if not words:
        return default
    nl = sum(w in _NL_WORDS for w in words)
    en = sum(w in _EN_WORDS for w in words)
    # A clear word-list majority settles short texts (and is right on long ones too).
    if len(words) < _MIN_WORDS_FOR_LINGUA or (
        nl + en >= 3 and (nl >= 2 * en + 2 or en >= 2 * nl + 2)
    ):
        if nl > en:
            return "nl"
        if en > nl:
            return "en"
        return default
    return _lingua(text) or default


def _lingua(text: str) -> str | None:
    try:
        from lingua import Language

        values = _detector().compute_language_confidence_values(text[:2000])
    except Exception:
        return None
    if not values:
        return None
    best = values[0]
    if best.value < _MIN_CONFIDENCE:
        return None
    return {Language.DUTCH: "nl", Language.ENGLISH: "en"}.get(best.language)
