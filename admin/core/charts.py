"""SVG charts drawn from numbers. Pure and deterministic (same input, same bytes).

Each chart is one ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that states its
data in words, so a screen reader gets the numbers the picture shows. Coordinates are
rounded to one decimal and labels escaped; no script, no external style.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape as _html_escape

from admin.core.analytics import Step

PALETTE = ("#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2")
FONT = 'font-family="sans-serif" font-size="11"'
Number = int | float | Decimal
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class Frame:
    """The plot area inside the margins."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.top + self.height


def line_chart(title: str, series: Sequence[Series], y_label: str, width: int = 640) -> str:
    """Lines over time (e.g. messages delivered per minute), one per series."""
    height = 260
    frame = Frame(56, 28, width - 72, height - 28 - 56)
    times = sorted({t for s in series for t, _ in s.points})
    top = nice_max(max((v for s in series for _, v in s.points), default=0))
    desc = "; ".join(f"{s.name}: {_total(s)} in {len(s.points)} intervals" for s in series)
    body = [*_y_axis(frame, top, y_label), *_x_times(frame, times)]
    for i, s in enumerate(series):
        body.append(_polyline(frame, s, times, top, PALETTE[i % len(PALETTE)]))
        body.append(_legend(frame.left + i * 140, height - 12, s.name, PALETTE[i % len(PALETTE)]))
    if not times:
        body.append(_text(frame.left + frame.width / 2, frame.top + frame.height / 2, "no data"))
    return _svg(title, desc or "no data", width, height, body)


def funnel_chart(title: str, steps: Sequence[Step], width: int = 640) -> str:
    """Each step as a bar centred on the axis, its width proportional to the first step's."""
    row = 34
    height = 24 + row * len(steps) + 8
    first = max((s.count for s in steps[:1]), default=0)
    desc = ", ".join(f"{s.label} {s.count}{_share(s.of_first)}" for s in steps)
    body = []
    for i, step in enumerate(steps):
        y = 24 + i * row
        bar = (width - 240) * (step.count / first if first else 0)
        x = 140 + (width - 240 - bar) / 2
        body += [
            _text(8, y + 17, step.label, anchor="start"),
            _rect(x, y + 2, bar, row - 8, PALETTE[i % len(PALETTE)]),
            _text(width - 8, y + 17, f"{step.count}{_share(step.of_first)}", anchor="end"),
        ]
    return _svg(title, desc or "no data", width, height, body)


def bar_chart(title: str, bars: Sequence[tuple[str, Number]], unit: str, width: int = 640) -> str:
    """Horizontal bars (e.g. cost by provider), largest scale = the widest bar."""
    row = 26
    height = 24 + row * max(len(bars), 1) + 8
    top = max((float(v) for _, v in bars), default=0)
    desc = ", ".join(f"{label}: {_number(v)} {unit}" for label, v in bars)
    body = []
    for i, (label, value) in enumerate(bars):
        y = 24 + i * row
        bar = (width - 260) * (float(value) / top if top else 0)
        body += [
            _text(8, y + 15, _clip(label), anchor="start"),
            _rect(150, y + 3, bar, row - 8, PALETTE[0]),
            _text(156 + bar, y + 15, f"{_number(value)} {unit}", anchor="start"),
        ]
    if not bars:
        body.append(_text(width / 2, 40, "no data"))
    return _svg(title, desc or "no data", width, height, body)


def nice_max(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at least ``value`` (1 up to 1:
    the charts count messages and clicks)."""
    if value <= 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next((m * power for m in (1, 2, 2.5, 5) if m * power >= value), 10.0 * power)


def chart_id(title: str) -> str:
    return "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "x")


def _svg(title: str, desc: str, width: int, height: int, body: Sequence[str]) -> str:
    cid = chart_id(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{cid}-t {cid}-d">'
        f'<title id="{cid}-t">{escape(title)}</title><desc id="{cid}-d">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _y_axis(frame: Frame, top: float, label: str) -> list[str]:
    parts = [_line(frame.left, frame.top, frame.left, frame.bottom)]
    for i in range(5):
        y = frame.bottom - frame.height * i / 4
        parts.append(_line(frame.left, y, frame.left + frame.width, y, "#e5e7eb"))
        parts.append(_text(frame.left - 6, y + 4, _number(top * i / 4), anchor="end"))
    x, y = 14, frame.top + frame.height / 2
    parts.append(
        f'<text x="{x}" y="{_f(y)}" {FONT} text-anchor="middle" '
        f'transform="rotate(-90 {x} {_f(y)})">{escape(label)}</text>'
    )
    return parts


def _x_times(frame: Frame, times: Sequence[datetime]) -> list[str]:
    parts = [_line(frame.left, frame.bottom, frame.left + frame.width, frame.bottom)]
    fmt = "%H:%M" if times and times[0].date() == times[-1].date() else "%d.%m %H:%M"
    picks = sorted({0, len(times) // 2, len(times) - 1}) if times else []
    for i in picks:
        x = _x_of(frame, i, len(times))
        parts.append(_text(x, frame.bottom + 16, times[i].strftime(fmt)))
    parts.append(_text(frame.left + frame.width / 2, frame.bottom + 32, "time (UTC)"))
    return parts


def _polyline(frame: Frame, s: Series, times: Sequence[datetime], top: float, color: str) -> str:
    index = {t: i for i, t in enumerate(times)}
    coords = " ".join(
        f"{_f(_x_of(frame, index[t], len(times)))},{_f(frame.bottom - frame.height * v / top)}"
        for t, v in sorted(s.points)
    )
    return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>'


def _x_of(frame: Frame, i: int, n: int) -> float:
    return frame.left + (frame.width * i / (n - 1) if n > 1 else frame.width / 2)


def _legend(x: float, y: float, name: str, color: str) -> str:
    return _rect(x, y - 9, 10, 10, color) + _text(x + 14, y, _clip(name), anchor="start")


def _line(x1: float, y1: float, x2: float, y2: float, color: str = "#6b7280") -> str:
    return f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{color}"/>'


def _rect(x: float, y: float, w: float, h: float, color: str) -> str:
    return f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" fill="{color}"/>'


def _text(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{_f(x)}" y="{_f(y)}" {FONT} text-anchor="{anchor}">{escape(text)}</text>'


def escape(text: str) -> str:
    """Escaped for XML, without the characters XML 1.0 cannot hold at all."""
    return _html_escape(_NOT_XML.sub("", text))


def _f(value: float) -> str:
    return f"{value:.1f}"


def _number(value: Number) -> str:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _share(part: float | None) -> str:
    return f" ({part:.0%})" if part is not None else ""


def _total(s: Series) -> str:
    return _number(sum(v for _, v in s.points))


def _clip(label: str, limit: int = 22) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
