"""Who may do what in the admin: one table, asked by every page and API call."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    marketer = "marketer"
    analyst = "analyst"  # finance and analytics
    operator = "operator"  # support
    sre = "sre"


class Permission(StrEnum):
    contacts_read = "contacts_read"
    contacts_write = "contacts_write"
    pii_read = "pii_read"  # unmasked phone numbers; every such read is audited
    audiences = "audiences"
    templates = "templates"
    campaigns_read = "campaigns_read"
    campaigns_write = "campaigns_write"
    analytics = "analytics"
    export = "export"
    providers_read = "providers_read"
    providers_write = "providers_write"
    users = "users"
    audit = "audit"
    integration = "integration"  # API tokens: the CRM's contacts, conversions


P = Permission
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.marketer: frozenset(
        {
            P.contacts_read,
            P.contacts_write,
            P.audiences,
            P.templates,
            P.campaigns_read,
            P.campaigns_write,
        }
    ),
    Role.analyst: frozenset({P.campaigns_read, P.analytics, P.export}),
    Role.operator: frozenset({P.contacts_read, P.pii_read, P.campaigns_read, P.providers_read}),
    Role.sre: frozenset({P.providers_read, P.providers_write}),
}

# API tokens act for a system, not a person: they get the integration permission only.
TOKEN_GRANTS = frozenset({P.integration})


def can(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"one of {', '.join(r.value for r in Role)}") from None
