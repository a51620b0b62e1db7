"""Russian → Latin transliteration so that a Cyrillic text travels as GSM-7 (fewer parts).

Theory of operation. The scheme is ICAO Doc 9303 (the one in Russian foreign passports since
2013: Щукин → Shchukin, Юлия → Iuliia): every Cyrillic letter becomes plain ASCII letters,
and a reader knows it from their own passport. GOST 7.79-2000 system B was refused: it writes
ъ, ь, ы and э with a backtick or apostrophe (``, `, y`, e`), and the backtick is not in the
GSM 03.38 alphabet, so its output could force the UCS-2 it is meant to avoid.

A capital becomes a capital first letter ("Ж" → "Zh"), or all capitals inside an upper-case
word ("ЖУК" → "ZHUK"). The "smart" punctuation of Russian typing («», —, …, №, curly quotes,
non-breaking spaces) maps to its GSM-7 form. Anything else still outside GSM-7 is reduced to
its base letter (ą → a) or else becomes "?", so the result is GSM-7 for any input. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from types import MappingProxyType

from providers.encoding import Encoding, choose_encoding

_ICAO = MappingProxyType(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
        "з": "z", "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
        "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts",
        "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "ie", "ы": "y", "ь": "", "э": "e", "ю": "iu",
        "я": "ia",
        # the letters of the neighbours that Russian texts meet (ICAO 9303 too)
        "і": "i", "ї": "i", "є": "ie", "ґ": "g", "ў": "u",
    }
)  # fmt: skip
_SMART = MappingProxyType(
    {
        "«": '"', "»": '"', "„": '"', "“": '"', "”": '"', "‟": '"', "‘": "'", "’": "'",
        "‚": "'", "′": "'", "″": '"', "`": "'", "—": "-", "–": "-", "‒": "-", "―": "-",
        "‐": "-", "‑": "-", "−": "-", "…": "...", "№": "N", "•": "*", "·": ".",
        "₽": "RUB", "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\t": " ",
        "\u200b": "", "\u200d": "", "\ufeff": "", "\u00ad": "", "×": "x", "°": "o",
        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "œ": "oe", "Œ": "OE",
    }
)  # fmt: skip
_UNKNOWN = "?"


def _table() -> dict[int, str]:
    """What needs no context: lower-case letters, capitals of one Latin letter, punctuation."""
    lower = {ord(c): latin for c, latin in _ICAO.items()}
    upper = {ord(c.upper()): latin.upper() for c, latin in _ICAO.items() if len(latin) <= 1}
    smart = {ord(c): latin for c, latin in _SMART.items() if choose_encoding(c) is Encoding.UCS2}
    return lower | upper | smart


_TABLE = MappingProxyType(_table())
# Capitals whose Latin is two letters or more: "Zh" or "ZH" depends on the neighbours.
_CONTEXTUAL = re.compile("[" + "".join(c.upper() for c, v in _ICAO.items() if len(v) > 1) + "]")


def transliterate(text: str) -> str:
    """``text`` with every character GSM-7 cannot carry replaced as the module header says."""
    if choose_encoding(text) is Encoding.GSM7:
        return text
    text = _CONTEXTUAL.sub(_capital, text).translate(_TABLE)
    if choose_encoding(text) is Encoding.GSM7:
        return text
    return "".join(ch if choose_encoding(ch) is Encoding.GSM7 else _fallback(ch) for ch in text)


def _capital(match: re.Match[str]) -> str:
    return _cased(_ICAO[match.group().lower()], match.string, match.start())


def _cased(latin: str, text: str, i: int) -> str:
    """ "Zh" inside a capitalised word, "ZH" inside an upper-case one."""
    return latin.upper() if _upper_word(text, i) else latin.capitalize()


def _upper_word(text: str, i: int) -> bool:
    before = text[i - 1] if i > 0 else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    return any(c.isalpha() and c.isupper() for c in (before, after)) and not any(
        c.isalpha() and c.islower() for c in (before, after)
    )


def _fallback(ch: str) -> str:
    """The base letter of an accented one (ą → a), when that is GSM-7; else "?"."""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and choose_encoding(base) is Encoding.GSM7:
        return base
    return _UNKNOWN
