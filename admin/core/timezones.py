"""The IANA time zone of a phone number (pure: tables and ``phonenumbers``' data, no IO).

Russian numbers (+7 followed by a 3-digit code) are looked up by the longest matching
prefix of their national number in ``_RU_ZONES``: geographic ABC codes (3xx, 4xx, 8xx)
belong to one region each, and the mobile DEF codes (9xx) of the operators' regional
branches are mostly in one zone (MTS Ural 912, MegaFon Siberia 923 …). A number nobody
can place — a federal mobile range, an unknown code — gets Moscow time, the zone of most
Russian subscribers. Other countries use ``phonenumbers``' time zone data (the first zone
it lists when a number spans several).

A wrong guess costs one or two hours of a send window, not a message: the contact's own
``timezone`` column, when the CRM knows it, always wins over this table.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as pn_timezone

DEFAULT_ZONE = "Europe/Moscow"

# zone → prefixes of the Russian national number (the digits after +7); longest wins.
_RU_BY_ZONE: dict[str, tuple[str, ...]] = {
    "Europe/Kaliningrad": ("401",),
    "Europe/Moscow": (
        "495", "496", "498", "499", "811", "812", "813", "814", "815", "816", "817", "818",
        "820", "821", "831", "833", "834", "835", "836", "841", "843", "847", "855", "861",
        "862", "863", "865", "866", "867", "871", "872", "873", "877", "878", "879", "471",
        "472", "473", "474", "475", "481", "482", "483", "484", "485", "486", "487", "491",
        "492", "493", "494", "910", "911", "915", "916", "918", "920", "921", "925", "926",
        "928", "931", "938",
    ),
    "Europe/Simferopol": ("365", "869", "978"),
    "Europe/Volgograd": ("844",),
    "Europe/Samara": ("341", "846", "848"),
    "Europe/Ulyanovsk": ("842",),
    "Europe/Saratov": ("845",),
    "Europe/Astrakhan": ("851",),
    "Asia/Yekaterinburg": (
        "342", "343", "345", "346", "347", "349", "351", "352", "353", "912", "922", "932",
    ),
    "Asia/Omsk": ("381",),
    "Asia/Novosibirsk": ("383", "913", "923", "933"),
    "Asia/Tomsk": ("382",),
    "Asia/Novokuznetsk": ("384",),
    "Asia/Barnaul": ("385", "388"),
    "Asia/Krasnoyarsk": ("390", "391", "394"),
    "Asia/Irkutsk": ("301", "395"),
    "Asia/Chita": ("302",),
    "Asia/Yakutsk": ("411", "416"),
    "Asia/Vladivostok": ("421", "423", "426", "914", "924"),
    "Asia/Sakhalin": ("424",),
    "Asia/Magadan": ("413",),
    "Asia/Kamchatka": ("415",),
    "Asia/Anadyr": ("427",),
}  # fmt: skip

_RU_ZONES: dict[str, str] = {
    prefix: zone for zone, prefixes in _RU_BY_ZONE.items() for prefix in prefixes
}
_LONGEST = max(map(len, _RU_ZONES))


def russian_zone(national: str) -> str:
    """The zone of a Russian national number (``4951234567``); Moscow when unknown."""
    for length in range(min(_LONGEST, len(national)), 0, -1):
        zone = _RU_ZONES.get(national[:length])
        if zone is not None:
            return zone
    return DEFAULT_ZONE


@lru_cache(maxsize=4096)
def timezone_for(e164: str) -> str:
    """The IANA zone of an E.164 number; Moscow when nothing better is known."""
    if e164.startswith("+7") and e164[2:3] not in ("6", "7"):  # +76, +77: Kazakhstan
        return russian_zone(e164[2:])
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return DEFAULT_ZONE
    if phonenumbers.region_code_for_number(parsed) == "RU":
        return russian_zone(str(parsed.national_number))
    return _foreign_zone(parsed)


def _foreign_zone(parsed: phonenumbers.PhoneNumber) -> str:
    zones = pn_timezone.time_zones_for_number(parsed)
    known = [z for z in zones if z != pn_timezone.UNKNOWN_TIMEZONE]
    return known[0] if known else DEFAULT_ZONE


def russian_zones() -> frozenset[str]:
    """Every zone the Russian table can answer (all eleven of Russia's offsets)."""
    return frozenset(_RU_BY_ZONE)
