"""SQL text shared by the stores: state labels come from the lifecycle table, not by hand."""

from __future__ import annotations

from gateway.core.lifecycle import State


def state_label_sql(column: str) -> str:
    """A CASE expression turning a state code into its label."""
    arms = " ".join(f"WHEN {s.value} THEN '{s.label}'" for s in State)
    return f"(CASE {column} {arms} END)"
