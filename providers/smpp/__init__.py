"""SMPP provider on aiosmpplib: see ``providers.smpp.provider`` for how it works."""

from providers.base import InboundPart
from providers.smpp.provider import SmppProvider
from providers.smpp.settings import SmppSettings

__all__ = ["InboundPart", "SmppProvider", "SmppSettings"]
