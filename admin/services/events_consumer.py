"""(placeholder: a helper fills this part of the admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from admin.app import Admin


async def run(admin: Admin) -> None:
    return None
