"""``GET /l/{code}``: the public end of a short link; redirects and records the click.

Only a stored code redirects, and only to the URL stored with it (checked when it was
saved), so the endpoint is no open redirect: nothing of the request picks the target. An
unknown code is a 404 page. HEAD requests and known fetchers (``links.counts_as_click``)
are redirected but not counted; a counted click is committed before the 302 goes out.
"""

from __future__ import annotations

from aiohttp import web

from admin.adapters import link_store
from admin.core.links import counts_as_click, ip_hash, is_code
from admin.http.auth import client_ip
from admin.http.errors import AdminError
from admin.http.keys import ADMIN

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def follow(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    if not is_code(code):
        raise _gone()
    pool = request.app[ADMIN].pool
    agent = request.headers.get("User-Agent", "")
    if counts_as_click(request.method, agent):
        url = await link_store.record_click(pool, code, ip_hash(client_ip(request), code), agent)
    else:
        url = await link_store.resolve(pool, code)
    if url is None:
        raise _gone()
    raise web.HTTPFound(url, headers=_HEADERS)


def _gone() -> AdminError:
    return AdminError("This link does not exist or has expired.", None, 404, "not_found")


def routes() -> list[web.RouteDef]:
    return [web.get("/l/{code}", follow)]  # GET also answers HEAD (not counted)
