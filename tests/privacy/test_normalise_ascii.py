"""The ASCII shortcut of both keyword normalisations gives exactly what the general (Unicode)
path gives: a trailing no-break space sends the same text down the general path and normalises
away (NFKC makes it a space; spaces are collapsed and stripped)."""

from __future__ import annotations

import random

from connectx.privacy import keywords
from connectx.privacy.requests import settings

GENERAL = "\u00a0"


def _samples() -> list[str]:
    rng = random.Random(3)
    chars = [chr(i) for i in range(128)]
    samples = [*chars, "STOP", " Stop! ", "stop\tnow", "R-12AB", "YES.", "ok\x00"]
    samples += ["".join(rng.choice(chars) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    return samples


def test_keyword_normalise_ascii_shortcut_matches_the_general_path() -> None:
    for text in _samples():
        assert text.isascii()
        assert keywords.normalise(text) == keywords.normalise(text + GENERAL), repr(text)


def test_privacy_keyword_normalise_ascii_shortcut_matches_the_general_path() -> None:
    for text in _samples():
        assert settings.normalise(text) == settings.normalise(text + GENERAL), repr(text)
