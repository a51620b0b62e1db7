"""The full stack the campaign and browser tests stand on comes up and serves a session."""

from __future__ import annotations

from admin.core.roles import Role
from tests.admin.conftest import Stack


async def test_full_stack_serves_the_admin_and_the_gateway_key_works(full_stack: Stack) -> None:
    http = await full_stack.app.client(Role.marketer)
    async with http.get("/api/me") as reply:
        assert (await reply.json())["role"] == "marketer"
    assert full_stack.api_key.startswith("sk_")
