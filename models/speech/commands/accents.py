"""English words as Czech, Italian, Finnish or Catalan speakers would read them, spelled for their voices.

festival's Czech, Italian, Finnish and Catalan voices are recordings of nine more people (women, men and
a child), but they read text by their own languages' rules. Each English word's pronunciation (festival's
English lexicon, ARPAbet phones) is written in the spelling of the voice's language, phone by phone, so
the voice says the English word with its own sounds: "seven" is "sevan" in Czech, "one" is "uan" in
Italian. That is accented English, as many users speak it.
"""

from __future__ import annotations

from collections.abc import Sequence

VOWELS = {"aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"}

_CZECH = {
    "aa": "á", "ae": "e", "ah": "a", "ao": "ó", "aw": "au", "ax": "a", "axr": "r", "ay": "aj", "eh": "e",
    "er": "er", "ey": "ej", "ih": "i", "iy": "í", "ow": "ou", "oy": "oj", "uh": "u", "uw": "ú",
    "b": "b", "ch": "č", "d": "d", "dh": "d", "f": "f", "g": "g", "hh": "h", "jh": "dž", "k": "k", "l": "l",
    "m": "m", "n": "n", "ng": "ng", "p": "p", "r": "r", "s": "s", "sh": "š", "t": "t", "th": "t", "v": "v",
    "w": "v", "y": "j", "z": "z", "zh": "ž",
}  # fmt: skip
_FINNISH = {
    "aa": "aa", "ae": "ä", "ah": "a", "ao": "oo", "aw": "au", "ax": "e", "axr": "ör", "ay": "ai", "eh": "e",
    "er": "ör", "ey": "ei", "ih": "i", "iy": "ii", "ow": "ou", "oy": "oi", "uh": "u", "uw": "uu",
    "b": "b", "ch": "ts", "d": "d", "dh": "d", "f": "f", "g": "g", "hh": "h", "jh": "ts", "k": "k", "l": "l",
    "m": "m", "n": "n", "ng": "ng", "p": "p", "r": "r", "s": "s", "sh": "s", "t": "t", "th": "t", "v": "v",
    "w": "v", "y": "j", "z": "s", "zh": "s",
}  # fmt: skip
_ITALIAN = {
    "aa": "a", "ae": "e", "ah": "a", "ao": "o", "aw": "au", "ax": "a", "axr": "er", "ay": "ai", "eh": "e",
    "er": "er", "ey": "ei", "ih": "i", "iy": "i", "ow": "ou", "oy": "oi", "uh": "u", "uw": "u",
    "b": "b", "d": "d", "dh": "d", "f": "f", "hh": "", "l": "l", "m": "m", "n": "n", "ng": "ng", "p": "p",
    "r": "r", "s": "s", "t": "t", "th": "t", "v": "v", "w": "u", "y": "i", "z": "s", "zh": "s",
}  # fmt: skip
_CATALAN = {
    "aa": "a", "ae": "e", "ah": "a", "ao": "o", "aw": "au", "ax": "a", "axr": "er", "ay": "ai", "eh": "e",
    "er": "er", "ey": "ei", "ih": "i", "iy": "i", "ow": "ou", "oy": "oi", "uh": "u", "uw": "u",
    "b": "b", "ch": "tx", "d": "d", "dh": "d", "f": "f", "hh": "", "jh": "dj", "l": "l", "m": "m", "n": "n",
    "ng": "ng", "p": "p", "r": "r", "sh": "x", "t": "t", "th": "t", "v": "v", "w": "u", "y": "i", "z": "z",
    "zh": "j",
}  # fmt: skip
_FRONT = ("e", "i")  # Italian and Catalan c and g are soft before these letters


def respell(phones: Sequence[str], language: str) -> str:
    """``phones`` (ARPAbet, lower case) written so that a reader of ``language`` says them."""
    if language == "czech":
        return _czech(phones)
    if language == "finnish":
        return "".join(_FINNISH[p] for p in phones)
    if language == "italian":
        return _italian(phones)
    if language == "catalan":
        return _catalan(phones)
    raise ValueError(f"no spelling rules for {language!r}")


def _czech(phones: Sequence[str]) -> str:
    out = []
    for i, phone in enumerate(phones):
        letters = _CZECH[phone]
        # d, t and n before i are soft in Czech (ď, ť, ň); y is the same vowel after a hard consonant.
        if phone in ("ih", "iy") and i and phones[i - 1] in ("d", "t", "n", "dh", "th"):
            letters = "y" if phone == "ih" else "ý"
        out.append(letters)
    return "".join(out)


def _italian(phones: Sequence[str]) -> str:
    out: list[str] = []
    for i, phone in enumerate(phones):
        following = _ITALIAN.get(phones[i + 1], "") if i + 1 < len(phones) else ""
        soft_next = following.startswith(_FRONT)
        if phone == "k":
            out.append("ch" if soft_next else "c")
        elif phone == "g":
            out.append("gh" if soft_next else "g")
        elif phone in ("ch", "jh", "sh"):
            stem = {"ch": "c", "jh": "g", "sh": "sc"}[phone]
            # Before a back vowel (or nothing) the soft sound needs an i: "cia", "gio", "scia".
            out.append(stem if soft_next else stem + "i")
        else:
            out.append(_ITALIAN[phone])
    return "".join(out)


def _catalan(phones: Sequence[str]) -> str:
    out: list[str] = []
    for i, phone in enumerate(phones):
        following = _CATALAN.get(phones[i + 1], "") if i + 1 < len(phones) else ""
        soft_next = following.startswith(_FRONT)
        if phone == "k":
            out.append("qu" if soft_next else "c")
        elif phone == "g":
            out.append("gu" if soft_next else "g")
        elif phone == "s":
            # one s between vowels is voiced in Catalan; ss is not
            between = 0 < i < len(phones) - 1 and phones[i - 1] in VOWELS and phones[i + 1] in VOWELS
            out.append("ss" if between else "s")
        else:
            out.append(_CATALAN[phone])
    return "".join(out)
