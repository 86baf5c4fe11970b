"""The page's charts as inline SVG, written here: no script, no font or file to fetch, so
the page opens offline and prints as drawn.

Colours are the Okabe-Ito palette (told apart with the common colour-vision deficiencies);
every chart has ``role="img"``, a ``<title>`` and a ``<desc>`` saying in words what it
shows, and labels its axes with their units.
"""

from __future__ import annotations

import itertools
import math
from html import escape

from markupsafe import Markup

BLUE, ORANGE, VERMILION, GREEN, GREY, BLACK = (
    "#0072B2",
    "#E69F00",
    "#D55E00",
    "#009E73",
    "#767676",
    "#000000",
)
_ids = itertools.count()


def money(value: float | None) -> str:
    """``$1.2M``, ``$340k``, ``$900``: short amounts for axes and labels."""
    if value is None:
        return "n/a"
    size = abs(value)
    if size >= 1e6:
        return f"${value / 1e6:,.1f}M"
    if size >= 1e4:
        return f"${value / 1e3:,.0f}k"
    return f"${value:,.0f}"


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-labelledby="t{n} d{n}"><title id="t{n}">{escape(title)}</title>'
        f'<desc id="d{n}">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11, **attrs) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(text)}</text>"
    )


def _ticks(top: float, n: int = 4) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) from 0 up to ``top``."""
    if top <= 0:
        return [0.0]
    raw = top / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [step * i for i in range(int(top // step) + 1)]


def fan_chart(row: dict, period: dict | None, as_of_label: str, team: str) -> Markup:
    """The team's period bookings: booked to date, then the Monte Carlo fan of the period's
    total (P10-P90 band, P50 line) from today to the close, against the quota line."""
    width, height, left, right, top, bottom = 760, 300, 70, 130, 24, 40
    booked, quota = row["closed_won"] or 0.0, row.get("quota")
    p10, p50, p90 = row["total_p10"], row["total_p50"], row["total_p90"]
    fraction = row.get("fraction_elapsed") or 0.5
    ymax = max(v for v in (p90, quota or 0, booked) if v is not None) * 1.1 or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(f: float) -> float:
        return left + f * plot_w

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ymax)

    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>']
    for tick in _ticks(ymax):
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#e0e0e0"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, money(tick), "end", 10))
    body.append(_text(left, top - 6, "bookings this period (US$)", "start", 10, fill=GREY))
    start = period["start"][:10] if period else "period start"
    close = period["close"][:10] if period else "period close"
    body.append(_text(x(0), height - 12, start, "start", 10))
    body.append(_text(x(1), height - 12, f"{close} (close)", "end", 10))
    body.append(_text(x(fraction), height - 24, f"today {as_of_label}", "middle", 10))
    body.append(
        f'<line x1="{x(fraction):.1f}" x2="{x(fraction):.1f}" y1="{top}" y2="{top + plot_h}" '
        f'stroke="{GREY}" stroke-dasharray="2 3"/>'
    )
    band = f"{x(fraction):.1f},{y(booked):.1f} {x(1):.1f},{y(p90):.1f} {x(1):.1f},{y(p10):.1f}"
    body.append(f'<polygon points="{band}" fill="{BLUE}" fill-opacity="0.25" class="fan"/>')
    body.append(
        f'<line x1="{x(fraction):.1f}" y1="{y(booked):.1f}" x2="{x(1):.1f}" y2="{y(p50):.1f}" '
        f'stroke="{BLUE}" stroke-width="2.5"/>'
    )
    body.append(
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(fraction):.1f}" y2="{y(booked):.1f}" '
        f'stroke="{BLACK}" stroke-width="2"/>'
    )
    body.append(f'<circle cx="{x(fraction):.1f}" cy="{y(booked):.1f}" r="3.5" fill="{BLACK}"/>')
    labels = [(p90, f"P90 {money(p90)}"), (p50, f"P50 {money(p50)}"), (p10, f"P10 {money(p10)}")]
    if quota:
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(quota):.1f}" y2="{y(quota):.1f}" '
            f'stroke="{VERMILION}" stroke-width="2" stroke-dasharray="6 4"/>'
        )
        labels.append((quota, f"quota {money(quota)}"))
    placed: list[float] = []
    for value, label in sorted(labels, key=lambda item: -item[0]):
        at = y(value) + 4
        while any(abs(at - other) < 12 for other in placed):
            at += 12
        placed.append(at)
        colour = VERMILION if label.startswith("quota") else BLUE
        body.append(_text(x(1) + 6, at, label, "start", 11, fill=colour))
    body.append(_text(x(fraction) - 4, y(booked) - 8, f"won {money(booked)}", "end", 10))
    title = f"{team}: bookings forecast for {period['label'] if period else 'the period'}"
    desc = (
        f"Booked to date {money(booked)}. The period's total is forecast between {money(p10)} "
        f"(P10) and {money(p90)} (P90), most likely {money(p50)} (P50)"
        + (f", against a quota of {money(quota)}." if quota else ".")
        + " The line from the period start joins zero and the bookings to date; it is not "
        "the day-by-day path."
    )
    return _svg(width, height, title, desc, body)


def interval_chart(rows: list[dict]) -> Markup:
    """Each rep's expected attainment (dot) and 80% interval (bar), against 100% of quota."""
    row_h, left, right, top = 26, 170, 30, 52
    width = 760
    height = top + row_h * max(len(rows), 1) + 30
    highest = max([1.2] + [r["attainment_p90"] or 0 for r in rows]) * 1.05
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + plot_w * min(max(v, 0.0), highest) / highest

    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>']
    step = 0.25 if highest <= 2 else 0.5
    tick = 0.0
    while tick <= highest:
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 6}" y2="{height - 26}" '
            f'stroke="#e0e0e0"/>'
        )
        body.append(_text(x(tick), height - 12, f"{tick:.0%}", "middle", 10))
        tick += step
    body.append(
        f'<line x1="{x(1):.1f}" x2="{x(1):.1f}" y1="{top - 10}" y2="{height - 26}" '
        f'stroke="{VERMILION}" stroke-width="2" stroke-dasharray="6 4"/>'
    )
    body.append(_text(x(1), top - 12, "quota (100%)", "middle", 10, fill=VERMILION))
    body.append(
        _text(8, top - 38, "dot: expected attainment; bar: 80% interval;", "start", 10, fill=GREY)
    )
    body.append(_text(8, top - 26, "vermilion: warned, blue: not warned", "start", 10, fill=GREY))
    parts = []
    for i, r in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        body.append(_text(left - 8, cy + 4, r["rep_name"], "end", 11))
        low, mid, high = r["attainment_p10"], r["expected_attainment"], r["attainment_p90"]
        if low is None or high is None or mid is None:
            continue
        colour = VERMILION if r.get("quota_warned") else BLUE
        body.append(
            f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
            f'stroke="{colour}" stroke-width="8" stroke-opacity="0.35" class="interval"/>'
        )
        body.append(f'<circle cx="{x(mid):.1f}" cy="{cy:.1f}" r="4.5" fill="{colour}"/>')
        parts.append(f"{r['rep_name']} {mid:.0%} ({low:.0%} to {high:.0%})")
    desc = (
        "Expected attainment of quota and its 80% interval per rep, warned reps in "
        "vermilion: " + "; ".join(parts) + "."
    )
    return _svg(width, height, "Expected attainment with 80% intervals", desc, body)


def reliability_chart(bins: list[dict], title: str) -> Markup:
    """Held-out calibration: mean predicted probability (x) against the observed rate (y)
    per bin, dot area by rows; the diagonal is perfect calibration."""
    size, pad = 200, 34
    plot = size - 2 * pad + 10

    def x(v: float) -> float:
        return pad + v * plot

    def y(v: float) -> float:
        return pad - 14 + plot * (1 - v)

    body = [f'<rect x="0" y="0" width="{size + 10}" height="{size}" fill="white"/>']
    body.append(
        f'<rect x="{x(0):.1f}" y="{y(1):.1f}" width="{plot:.1f}" height="{plot:.1f}" '
        f'fill="none" stroke="#bdbdbd"/>'
    )
    body.append(
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" '
        f'stroke="{GREY}" stroke-dasharray="4 3"/>'
    )
    for v in (0, 0.5, 1):
        body.append(_text(x(v), y(0) + 13, f"{v:.0%}", "middle", 9))
        body.append(_text(x(0) - 4, y(v) + 3, f"{v:.0%}", "end", 9))
    body.append(_text(x(0.5), size - 2, "predicted", "middle", 10))
    body.append(
        _text(10, y(0.5), "observed", "middle", 10, transform=f"rotate(-90 10 {y(0.5):.1f})")
    )
    most = max([b["n"] for b in bins] + [1])
    points = []
    for b in bins:
        radius = 2.5 + 5.5 * (b["n"] / most) ** 0.5
        body.append(
            f'<circle cx="{x(b["predicted"]):.1f}" cy="{y(b["observed"]):.1f}" '
            f'r="{radius:.1f}" fill="{BLUE}" fill-opacity="0.75"/>'
        )
        points.append(
            f"predicted {b['predicted']:.0%}, observed {b['observed']:.0%} ({b['n']} rows)"
        )
    if len(bins) > 1:
        line = " ".join(f"{x(b['predicted']):.1f},{y(b['observed']):.1f}" for b in bins)
        body.append(f'<polyline points="{line}" fill="none" stroke="{BLUE}" stroke-width="1.5"/>')
    desc = "Held-out reliability per probability bin: " + "; ".join(points) + "."
    return _svg(size + 10, size, title, desc, body)
