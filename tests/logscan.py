"""A pytest plugin: no log line of the whole test session holds a phone number or a text.

Every record reaching the root logger is scanned as it is emitted (the root is opened to
DEBUG for the session, so lines below the production level are checked too), and at the
end of the session so is every log file of a process the tests spawned
(``loadtest.processes.SPAWNED_LOGS``). A line holds personal data if it has a whole
phone number (``gateway.core.masking.find_phones``), the canary word the tests put in
texts they send, or a text registered with ``register_text``. Any leak fails the run;
the report shows the lines masked, so that the failure output does not leak in turn.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.core.masking import find_phones, mask_text, scrub
from loadtest.processes import SPAWNED_LOGS

CANARY = "канарейка"  # put it in a text and any log line quoting the text is caught
MIN_TEXT = 8  # shorter registered texts ("x", "one") would match innocent lines
SHOWN = 20

_texts: set[str] = set()


def register_text(text: str) -> None:
    """A text the tests sent: it must not appear in any log line."""
    if len(text) >= MIN_TEXT:
        _texts.add(text)


@dataclass(frozen=True, slots=True)
class Leak:
    source: str
    line: str  # already masked: safe to print

    def __str__(self) -> str:
        return f"{self.source}: {self.line}"


def leaks_in(line: str, texts: Iterable[str] = ()) -> str | None:
    """``line`` masked if it leaks a number or a text, else None."""
    found = [t for t in texts if _holds(line, t)]
    if not found and CANARY not in line.lower() and next(find_phones(line), None) is None:
        return None
    for text in sorted(found, key=len, reverse=True):
        line = line.replace(text, mask_text(text))
    return scrub(_mask_canary(line))


def _holds(line: str, text: str) -> bool:
    """``text`` in ``line``, but a text edged with digits ("12345678") only where it is not
    part of a longer digit run: a 19-digit message id holds many such texts innocently."""
    at = line.find(text)
    while at >= 0:
        end = at + len(text)
        glued_before = at > 0 and text[0].isdigit() and line[at - 1].isdigit()
        glued_after = end < len(line) and text[-1].isdigit() and line[end].isdigit()
        if not (glued_before or glued_after):
            return True
        at = line.find(text, at + 1)
    return False


def _mask_canary(line: str) -> str:
    lowered = line.lower()
    while (at := lowered.find(CANARY)) >= 0:
        line = line[:at] + "<canary>" + line[at + len(CANARY) :]
        lowered = line.lower()
    return line


def scan_lines(source: str, lines: Iterable[str], texts: Iterable[str] = ()) -> Iterator[Leak]:
    kept = tuple(texts)
    for line in lines:
        masked = leaks_in(line, kept)
        if masked is not None:
            yield Leak(source, masked)


class LeakCollector(logging.Handler):
    """Scans each record as it is emitted, keeping only the leaks (masked)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.leaks: list[Leak] = []
        self.seen: Counter[str] = Counter()  # records scanned, by logger

    def emit(self, record: logging.LogRecord) -> None:
        self.seen[record.name] += 1
        try:
            lines = self.format(record).splitlines()
        except Exception:  # a record that cannot be formatted is pytest's to report
            return
        self.leaks += scan_lines(f"log {record.name}", lines, _texts)


def scan_files(paths: Iterable[Path]) -> list[Leak]:
    leaks: list[Leak] = []
    for path in paths:
        if path.exists():
            leaks += scan_lines(str(path), path.read_text(errors="replace").splitlines(), _texts)
    return leaks


_collector = LeakCollector()
_found: list[Leak] = []


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(_collector)
    root.setLevel(logging.DEBUG)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    logging.getLogger().removeHandler(_collector)
    _found[:] = _collector.leaks + scan_files(dict.fromkeys(SPAWNED_LOGS))
    if _found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _found:
        return
    terminalreporter.section("personal data in logs", red=True)
    for leak in _found[:SHOWN]:
        terminalreporter.write_line(str(leak))
    if len(_found) > SHOWN:
        terminalreporter.write_line(f"… and {len(_found) - SHOWN} more lines")
