"""Server-rendered pages: jinja2 templates under admin/templates, the menu by permission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web

from admin.core.roles import Permission, can
from admin.http.errors import AdminError
from admin.http.keys import session_of
from providers.masking import mask_phone


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    permission: Permission


# The top menu; a part of the admin adds its item here. Shown only to roles that may open it.
NAV: list[NavItem] = [
    NavItem("/contacts", "Contacts", Permission.contacts_read),
    NavItem("/audiences", "Audiences", Permission.audiences),
    NavItem("/templates", "Templates", Permission.templates),
    NavItem("/campaigns", "Campaigns", Permission.campaigns_read),
    NavItem("/analytics", "Analytics", Permission.analytics),
    NavItem("/exports", "Exports", Permission.export),
    NavItem("/providers", "Providers", Permission.providers_read),
    NavItem("/users", "Users", Permission.users),
    NavItem("/audit", "Audit", Permission.audit),
]

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("admin", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["mask_phone"] = mask_phone


def context(request: web.Request) -> dict[str, Any]:
    found = session_of(request)
    user = found.user if found else None
    nav = [item for item in NAV if user and can(user.role, item.permission)]
    return {"user": user, "csrf": found.csrf if found else "", "nav": nav, "path": request.path}


def render(request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
    html = ENV.get_template(name).render(**context(request), **values)
    return web.Response(text=html, status=status, content_type="text/html")


def render_error(request: web.Request, exc: AdminError) -> web.Response:
    return render(request, "error.html", status=exc.status, error=exc)
