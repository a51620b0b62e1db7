"""The HTTP access log, with phone numbers masked: paths and queries carry them
(``/v1/opt-outs/+79211234567``, ``/v1/rates?to=8%20921…``), aiohttp's own log would not."""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.core.masking import scrub

ACCESS_LOG = logging.getLogger("gateway.access")


class MaskedAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.1f ms',
            request.remote,
            request.method,
            masked_target(request.path, request.query_string),
            response.status,
            response.body_length,
            time * 1000,
        )


def masked_target(path: str, query: str) -> str:
    """The decoded path and query (so that ``%2B7…``, or ``+7…`` read as a space in a
    query, are seen) with every number masked."""
    target = f"{path}?{unquote_plus(query)}" if query else path
    return scrub(target)
