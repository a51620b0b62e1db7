"""Personal data never reaches a log line whole (152-FZ): numbers and texts are masked.

The definitions live in ``providers.masking`` (the providers use them and import nothing
above them); this is where the gateway takes them from.
"""

from __future__ import annotations

from providers.masking import find_phones, mask_phone, mask_text, scrub

__all__ = ["find_phones", "mask_phone", "mask_text", "scrub"]
