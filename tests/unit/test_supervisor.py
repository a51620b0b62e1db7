"""Which roles each child of ``smsgw run --procs N`` runs."""

from __future__ import annotations

from smsgw.supervisor import Supervisor, child_roles

ALL = frozenset({"api", "dispatch", "sweeper", "webhooks"})


def test_the_sweeper_runs_in_child_zero_only() -> None:
    assert child_roles(ALL, 0) == ["api", "dispatch", "sweeper", "webhooks"]
    assert child_roles(ALL, 2) == ["api", "dispatch", "webhooks"]
    assert child_roles(frozenset({"sweeper"}), 1) == []  # such a child is not started


def test_children_share_the_port_and_the_settings_file() -> None:
    argv = Supervisor(["--config", "gw.toml"], frozenset({"api"}), 2).argv(1)
    assert argv[1:] == ["-m", "smsgw.cli", "--config", "gw.toml", "run", "--role", "api",
                        "--reuse-port"]  # fmt: skip
