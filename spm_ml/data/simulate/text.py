"""Render email subjects and bodies from templates, vectorised over millions of emails.

Each email has a true tone (negative / neutral / positive) decided by the deal's health.  Its
body is a greeting, one to three sentences of that tone, sometimes a sentence of another tone
(a polite closing after a cancellation), sometimes a link, a sign-off, and optionally a
signature block, a quoted earlier message ("On Tue, Mar 4, 2025 at 10:12 AM Jane Doe
<jane@acme.com> wrote:" then "> " lines) and a legal footer.  The label is the main tone;
per-sentence tones are returned too.

Rendering groups emails by template and concatenates numpy object arrays, so the cost is a
few C-level string concatenations per email rather than a Python ``format`` call each.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spm_ml.data.simulate import templates
from spm_ml.data.simulate.config import EmailKnobs

logger = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
OUR_COMPANY = "Pulse Revenue Cloud"


@dataclass(frozen=True)
class RenderedEmails:
    subject: np.ndarray | pa.Array | pa.ChunkedArray
    body: pa.Array | pa.ChunkedArray
    sentence_labels: np.ndarray | pa.Array | pa.ChunkedArray
    mixed: np.ndarray
    quoted: np.ndarray


@lru_cache(maxsize=1024)
def _parse(template: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((lit, fld) for lit, fld, _, _ in string.Formatter().parse(template))


def render(pool: tuple[str, ...], choice: np.ndarray, fills: dict[str, np.ndarray]) -> np.ndarray:
    """Fill ``pool[choice[i]]`` with ``fills[field][i]`` for every row ``i``."""
    n = len(choice)
    out = np.empty(n, dtype=object)
    if n == 0:
        return out
    order = np.argsort(choice, kind="stable")
    bounds = np.flatnonzero(np.diff(choice[order])) + 1
    for rows in np.split(order, bounds):
        acc = np.full(len(rows), "", dtype=object)
        for literal, name in _parse(pool[int(choice[rows[0]])]):
            if literal:
                acc = acc + literal
            if name:
                acc = acc + fills[name][rows]
        out[rows] = acc
    return out


def _fields(pool: tuple[str, ...]) -> set[str]:
    return {name for t in pool for _, name in _parse(t) if name}


def _by_group(
    keys: np.ndarray,
    pools: dict[int, tuple[str, ...]],
    fills: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Render one template per row, the pool chosen by the row's integer key."""
    out = np.empty(len(keys), dtype=object)
    for key, pool in pools.items():
        rows = np.flatnonzero(keys == key)
        if len(rows):
            sub = {k: fills[k][rows] for k in _fields(pool)}
            out[rows] = render(pool, rng.integers(0, len(pool), len(rows)), sub)
    return out


def _piece(n: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A full-length text column, empty except at ``rows``."""
    out = np.full(n, "", dtype=object)
    out[rows] = values
    return out


def _key(inbound: np.ndarray, label: np.ndarray) -> np.ndarray:
    return inbound.astype(np.int64) * 3 + label


def render_emails(
    inbound: np.ndarray,
    label: np.ndarray,
    fills: dict[str, np.ndarray],
    knobs: EmailKnobs,
    rng: np.random.Generator,
) -> RenderedEmails:
    """Subjects, bodies and per-sentence tones for emails with the given direction and tone.

    ``fills`` holds object arrays (one entry per email) for every template field plus
    ``c_full``, ``c_email``, ``c_title``, ``r_full``, ``r_email``, ``q_header``, ``domain``,
    ``token`` and ``phone``.
    """
    n = len(label)
    key = _key(inbound, label)
    names = np.asarray(LABELS, dtype=object)

    subject_pools = {
        _key(np.array([d]), np.array([t]))[0]: p for (d, t), p in templates.SUBJECTS.items()
    }
    sentence_pools = {
        _key(np.array([d]), np.array([t]))[0]: p for (d, t), p in templates.SENTENCES.items()
    }
    subject = _by_group(key, subject_pools, fills, rng)
    quoted = rng.random(n) < knobs.quote_share
    subject = np.where(quoted, "Re: " + subject, subject)

    to_name = np.where(inbound, fills["r_first"], fills["c_first"])
    from_first = np.where(inbound, fills["c_first"], fills["r_first"])
    greeting = render(
        templates.GREETINGS, rng.integers(0, len(templates.GREETINGS), n), {"name": to_name}
    )

    pieces = [greeting, "\n\n", _by_group(key, sentence_pools, fills, rng)]
    sentence_labels = names[label].copy()
    n_main = 1 + rng.binomial(2, 0.35, n)
    for slot in (2, 3):
        rows = np.flatnonzero(n_main >= slot)
        text = _by_group(key[rows], sentence_pools, {k: v[rows] for k, v in fills.items()}, rng)
        pieces.append(_piece(n, rows, " " + text))
        sentence_labels[rows] = sentence_labels[rows] + "|" + names[label[rows]]

    mixed = rng.random(n) < knobs.mixed_share
    extra = np.full(n, "", dtype=object)
    for main, pool in templates.MIXED.items():
        rows = np.flatnonzero(mixed & (label == main))
        if len(rows) == 0:
            continue
        pick = rng.integers(0, len(pool), len(rows))
        texts = tuple(t for t, _ in pool)
        tones = np.array([tone for _, tone in pool])[pick]
        sub = {k: fills[k][rows] for k in _fields(texts)}
        extra[rows] = " " + render(texts, pick, sub)
        sentence_labels[rows] = sentence_labels[rows] + "|" + names[tones]
    pieces.append(extra)

    rows = np.flatnonzero(rng.random(n) < knobs.url_share)
    sub = {k: fills[k][rows] for k in _fields(templates.URL_LINES)}
    pick = rng.integers(0, len(templates.URL_LINES), len(rows))
    pieces.append(_piece(n, rows, "\n" + render(templates.URL_LINES, pick, sub)))
    sentence_labels[rows] = sentence_labels[rows] + "|neutral"

    closing = np.asarray(templates.CLOSINGS, dtype=object)[
        rng.integers(0, len(templates.CLOSINGS), n)
    ]
    pieces += ["\n\n", closing, "\n", from_first]
    rows = np.flatnonzero(rng.random(n) < knobs.signature_share)
    ib = inbound[rows]
    sig_name = np.where(ib, fills["c_full"][rows], fills["r_full"][rows])
    sig_title = np.where(ib, fills["c_title"][rows], "Account Executive")
    sig_company = np.where(ib, fills["company"][rows], OUR_COMPANY)
    signature = "\n--\n" + sig_name + "\n" + sig_title + " | " + sig_company + "\n"
    pieces.append(_piece(n, rows, signature + fills["phone"][rows]))

    rows = np.flatnonzero(quoted)
    ib = inbound[rows]
    other_name = np.where(ib, fills["r_full"][rows], fills["c_full"][rows])
    other_email = np.where(ib, fills["r_email"][rows], fills["c_email"][rows])
    # the quoted message comes from the other side, in a neutral or upbeat tone
    q_key = _key(~ib, np.where(rng.random(len(rows)) < 0.6, 1, 2))
    sub = {k: v[rows] for k, v in fills.items()}
    first = _by_group(q_key, sentence_pools, sub, rng)
    second = _by_group(q_key, sentence_pools, sub, rng)
    header = "\n\nOn " + fills["q_header"][rows] + " " + other_name + " <" + other_email
    pieces.append(_piece(n, rows, header + "> wrote:\n> " + first + "\n> " + second))

    rows = np.flatnonzero(rng.random(n) < knobs.footer_share)
    footers = np.asarray(templates.FOOTERS, dtype=object)
    pieces.append(_piece(n, rows, "\n\n" + footers[rng.integers(0, len(footers), len(rows))]))
    # one C++ element-wise join instead of re-copying growing Python strings per piece
    body = pc.binary_join_element_wise(
        *[p if isinstance(p, str) else pa.array(p, pa.string()) for p in pieces], ""
    )
    return RenderedEmails(
        subject=subject,
        body=body,
        sentence_labels=sentence_labels,
        mixed=mixed,
        quoted=quoted,
    )
