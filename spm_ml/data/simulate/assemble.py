"""Turn the raw simulation arrays into the nine contract tables and the latent truth.

This is where the extraction cut happens: nothing dated at or after ``extracted_at`` is kept,
events of a deal are cut at its (possibly quarter-end adjusted) close, and the deals table is
*derived* from deal_history replayed up to ``extracted_at``, so replaying the history always
reproduces the deals table exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spm_ml.data import schema
from spm_ml.data.simulate import careers, catalog, text
from spm_ml.data.simulate.clock import MINUTES_PER_DAY, day_strings
from spm_ml.data.simulate.engine import RawOrg
from spm_ml.data.simulate.lifecycle import (
    ACT_CALL,
    ACT_DEMO,
    ACT_MEETING,
    FIELD_AMOUNT,
    FIELD_EXPECTED,
    FIELD_STAGE,
    STAGE_LOST,
    STAGE_WON,
)
from spm_ml.data.simulate.workforce import AE, FOCUS_LABELS
from spm_ml.data.tables import Tables

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
STR = "str"
SEGMENT_NAMES = np.array(["smb", "mid_market", "enterprise"], dtype=object)
FIELD_NAMES = np.array(["stage", "amount", "expected_close_at"], dtype=object)
OWNER = schema.OWNER_FIELD
STAGE_NAMES = np.array(schema.DEAL_STAGES, dtype=object)
ACTIVITY_NAMES = np.array(schema.ACTIVITY_TYPES, dtype=object)


def ids(prefix: str, n: int, width: int | None = None) -> np.ndarray:
    """``prefix`` + zero-padded running number, as an object array."""
    return np.asarray(arrow_ids(prefix, n, width).to_numpy(zero_copy_only=False), dtype=object)


def arrow_ids(prefix: str, n: int, width: int | None = None) -> pa.Array:
    """``prefix`` + zero-padded running number, built in Arrow (millions per second)."""
    width = width or max(5, len(str(max(n - 1, 0))))
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def take(dictionary: np.ndarray | pa.Array, idx: np.ndarray) -> pa.Array:
    """``dictionary[idx]`` as an Arrow string array; negative ``idx`` gives null."""
    if not isinstance(dictionary, pa.Array):
        dictionary = pa.array(dictionary, pa.string())
    idx = np.asarray(idx, dtype=np.int64)
    return pc.take(dictionary, pa.array(idx, mask=idx < 0))


def _frame(table: str, columns: dict[str, object]) -> pd.DataFrame:
    """Build a frame with the house dtypes: contract columns first, extras after."""
    tschema = schema.TABLES[table]
    required = tschema.column_names
    order = [c for c in required if c in columns] + [c for c in columns if c not in required]
    data = {}
    for name in order:
        values = columns[name]
        kind = tschema.column(name).kind if name in required else None
        arrow = isinstance(values, pa.Array | pa.ChunkedArray)
        if arrow or kind in ("id", "string", "enum") or (kind is None and _is_text(values)):
            data[name] = pd.array(values, dtype=STR)
        elif kind == "datetime" or (kind is None and np.asarray(values).dtype.kind == "M"):
            data[name] = pd.array(np.asarray(values, dtype="datetime64[ns]"))
        elif kind == "int":
            data[name] = pd.array(values, dtype="Int64")
        else:
            data[name] = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(data)


def _is_text(values: object) -> bool:
    arr = np.asarray(values)
    return arr.dtype == object or arr.dtype.kind in "US"


def build(raw: RawOrg, progress: Progress | None = None) -> tuple[Tables, dict[str, pd.DataFrame]]:
    """Assemble ``Tables`` (cut at ``extracted_at``) and the ground-truth frames."""
    clock = raw.clock
    end = clock.end
    people, deals, ev = raw.people, raw.deals, raw.events
    rng = np.random.default_rng(raw.text_seed)
    steps = 8

    def tick(i: int) -> None:
        if progress is not None:
            progress("tables", i, steps)

    # ---- reps
    in_org = people.hire < end
    n_people = people.n
    rep_ids = ids("R", n_people)
    region_names = np.array([*catalog.REGIONS, "Global"], dtype=object)
    team_names = np.array([*raw.seats.team_names], dtype=object)
    team = np.where(
        people.team >= 0,
        team_names[np.maximum(people.team, 0)],
        np.where(people.region >= 0, region_names[people.region] + " Leadership", "Leadership"),
    )
    first = np.asarray(catalog.FIRST_NAMES, dtype=object)[people.first]
    last = np.asarray(catalog.LAST_NAMES, dtype=object)[people.last]
    exited = people.exit < end
    reps = _frame(
        "reps",
        {
            "rep_id": rep_ids[in_org],
            "manager_id": np.where(people.manager >= 0, rep_ids[people.manager], None)[in_org],
            "team": team[in_org],
            "region": region_names[people.region][in_org],
            "role": np.where(people.role == AE, "AE", "manager")[in_org].astype(object),
            "hire_date": clock.to_datetime(people.hire)[in_org],
            "exit_date": np.where(
                exited, clock.to_datetime(np.minimum(people.exit, end)), np.datetime64("NaT")
            )[in_org],
            "exit_reason": np.where(
                exited & (people.exit_reason == 1),
                "voluntary",
                np.where(exited & (people.exit_reason == 2), "involuntary", None),
            )[in_org],
            "name": (first + " " + last)[in_org],
            "segment_focus": np.where(
                people.seat >= 0,
                np.asarray(FOCUS_LABELS, dtype=object)[raw.seats.focus[np.maximum(people.seat, 0)]],
                None,
            )[in_org],
        },
    )
    tick(1)

    # ---- accounts
    acc = raw.accounts
    account_ids = ids("A", len(acc))
    accounts = _frame(
        "accounts",
        {
            "account_id": account_ids,
            "industry": np.asarray(catalog.INDUSTRIES, dtype=object)[acc.industry],
            "employees": acc.employees,
            "annual_revenue": acc.annual_revenue,
            "region": np.asarray(catalog.REGIONS, dtype=object)[acc.region],
            "name": acc.name,
        },
    )
    tick(2)

    # ---- deal history, then deals derived from it
    n_deals = len(deals)
    created = deals["created"]
    close = deals["close"]
    won = deals["won"]
    origin = raw.flags["origin"]
    keep_deal = (created < end) & (close >= origin)
    deal_ids = ids("D", n_deals, width=7)
    hist = _history(raw, end, keep_deal)
    state = _replay(hist, n_deals)
    closed = close < end
    cut = np.minimum(close, end - 1)
    owner_final = raw.ledger.owner_at(np.arange(n_deals), cut)
    days = _day_table(clock, hist)
    moves = _transfers(raw, cut, keep_deal)
    # owner changes after the deal's field rows of the same moment, all in (deal, time) order
    h_deal = np.concatenate([hist["deal"], moves["deal"]])
    h_time = np.concatenate([hist["time"], moves["time"]])
    h_rank = np.concatenate([hist["field"], np.full(len(moves["deal"]), len(FIELD_NAMES))])
    order = np.lexsort((h_rank, h_time, h_deal))
    hist_frame = _frame(
        "deal_history",
        {
            "deal_id": take(deal_ids, h_deal[order]),
            "changed_at": clock.to_datetime(h_time[order]),
            "field": np.concatenate(
                [FIELD_NAMES[hist["field"]], np.full(len(moves["deal"]), OWNER, dtype=object)]
            )[order],
            "old_value": np.concatenate(
                [_format_values(hist["field"], hist["old"], days), rep_ids[moves["old"]]]
            )[order],
            "new_value": np.concatenate(
                [_format_values(hist["field"], hist["value"], days), rep_ids[moves["new"]]]
            )[order],
        },
    )
    d = np.flatnonzero(keep_deal)
    deals_frame = _frame(
        "deals",
        {
            "deal_id": deal_ids[d],
            "rep_id": rep_ids[owner_final[d]],
            "account_id": account_ids[deals["account"][d]],
            "product": np.asarray(catalog.PRODUCTS, dtype=object)[deals["product"][d]],
            "amount": state["amount"][d],
            "created_at": clock.to_datetime(created[d]),
            "expected_close_at": clock.to_datetime(state["expected"][d].astype(np.int64)),
            "closed_at": np.where(closed[d], clock.to_datetime(cut[d]), np.datetime64("NaT")),
            "stage": STAGE_NAMES[state["stage"][d].astype(np.int64)],
            "outcome": np.where(closed[d], np.where(won[d], "won", "lost"), None).astype(object),
            "segment": SEGMENT_NAMES[deals["segment"][d]],
            "lead_source": np.asarray(catalog.LEAD_SOURCES, dtype=object)[deals["lead_source"][d]],
        },
    )
    tick(3)

    # ---- activities (deal work + account-level work), in time order
    a_deal = ev["act_deal"]
    a_time = ev["act_time"]
    ok = (a_time < close[a_deal]) & (a_time < end) & keep_deal[a_deal]
    a_deal, a_time = a_deal[ok], a_time[ok]
    a_type = ev["act_type"][ok]
    a_contact = ev["act_contact"][ok]
    a_rep = raw.ledger.owner_at(a_deal, a_time)
    a_account = deals["account"][a_deal]
    acc_time = ev.get("acc_time", np.zeros(0, np.int64))
    acc_ok = (acc_time < end) & (acc_time >= origin)
    all_time = np.concatenate([a_time, acc_time[acc_ok]])
    all_rep = np.concatenate([a_rep, ev.get("acc_rep", np.zeros(0, np.int64))[acc_ok]])
    all_deal = np.concatenate([a_deal, np.full(acc_ok.sum(), -1)])
    all_account = np.concatenate([a_account, ev.get("acc_account", np.zeros(0, np.int64))[acc_ok]])
    all_type = np.concatenate([a_type, ev.get("acc_type", np.zeros(0, np.int8))[acc_ok]])
    all_contact = np.concatenate([a_contact, ev.get("acc_contact", np.zeros(0, np.int64))[acc_ok]])
    order = np.lexsort((all_deal, all_time))
    all_time, all_rep, all_deal = all_time[order], all_rep[order], all_deal[order]
    all_account, all_type, all_contact = all_account[order], all_type[order], all_contact[order]
    rep_arrow = pa.array(rep_ids, pa.string())
    deal_arrow = pa.array(deal_ids, pa.string())
    account_arrow = pa.array(account_ids, pa.string())
    activities = _frame(
        "activities",
        {
            "activity_id": arrow_ids("ACT", len(all_time), width=8),
            "rep_id": take(rep_arrow, all_rep),
            "deal_id": take(deal_arrow, all_deal),
            "account_id": take(account_arrow, all_account),
            "type": take(ACTIVITY_NAMES, all_type),
            "occurred_at": clock.to_datetime(all_time),
            "duration_min": _durations(all_type, rng),
            "contact_id": _contact_ids(account_arrow, all_account, all_contact),
        },
    )
    tick(4)

    # ---- emails, in time order, with rendered text
    m_deal = ev["mail_deal"]
    m_time = ev["mail_time"]
    ok = (m_time < close[m_deal]) & (m_time < end) & keep_deal[m_deal]
    order = np.flatnonzero(ok)
    order = order[np.lexsort((m_deal[order], m_time[order]))]
    m_deal, m_time = m_deal[order], m_time[order]
    inbound = ev["mail_inbound"][order]
    label = ev["mail_label"][order].astype(np.int64)
    m_contact = ev["mail_contact"][order]
    m_rep = raw.ledger.owner_at(m_deal, m_time)
    m_account = deals["account"][m_deal]
    rendered = _render_in_batches(
        raw, m_deal, m_time, m_rep, m_account, m_contact, inbound, label, first, last, rng,
        progress,
    )  # fmt: skip
    email_ids = arrow_ids("E", len(m_time), width=8)
    emails = _frame(
        "emails",
        {
            "email_id": email_ids,
            "deal_id": take(deal_arrow, m_deal),
            "rep_id": take(rep_arrow, m_rep),
            "direction": take(np.array(["outbound", "inbound"], dtype=object), inbound.astype(int)),
            "sent_at": clock.to_datetime(m_time),
            "subject": rendered.subject,
            "body": rendered.body,
            "contact_id": _contact_ids(account_arrow, m_account, m_contact),
        },
    )
    tick(5)

    # ---- quotas and compensation
    qt = raw.quarters
    q_keep = clock.quarter_starts[qt["quarter"]] >= origin
    q_rep = qt["rep"][q_keep]
    q = qt["quarter"][q_keep]
    period_start = np.array([np.datetime64(ts, "ns") for ts in clock.quarter_labels])[q]
    period_end = period_start.astype("datetime64[M]")
    period_end = (period_end + 3).astype("datetime64[ns]") - np.timedelta64(1, "D")
    quotas = _frame(
        "quotas",
        {
            "rep_id": rep_ids[q_rep],
            "period_start": period_start,
            "period_end": period_end,
            "quota_amount": qt["quota"][q_keep],
        },
    )
    compensation = _frame(
        "compensation",
        {
            "rep_id": rep_ids[q_rep],
            "period_start": period_start,
            "period_end": period_end,
            "base_pay": qt["base_pay"][q_keep],
            "target_incentive": qt["target_incentive"][q_keep],
            "paid_incentive": np.where(qt["finalized"], qt["paid_incentive"], np.nan)[q_keep],
        },
    )
    tick(6)

    tables = Tables(
        reps=reps,
        accounts=accounts,
        deals=deals_frame,
        deal_history=hist_frame,
        activities=activities,
        emails=emails,
        quotas=quotas,
        compensation=compensation,
        rep_history=_rep_history(raw, rep_ids, team_names, in_org),
        extracted_at=raw.config.extracted_at,
    )
    truth = _truth(raw, rep_ids, deal_ids, email_ids, label, inbound, rendered, m_deal, m_time)
    tick(7)
    tick(8)
    return tables, truth


def _rep_history(
    raw: RawOrg, rep_ids: np.ndarray, team_names: np.ndarray, in_org: np.ndarray
) -> pd.DataFrame:
    """Every change of manager or team before ``extracted_at``, in time order."""
    ch = raw.rep_changes
    if not ch:
        return _frame("rep_history", {c: [] for c in schema.TABLES["rep_history"].column_names})
    ok = (ch["time"] < raw.clock.end) & in_org[ch["person"]]
    is_team = ch["field"][ok] == careers.FIELD_TEAM

    def values(column: str) -> np.ndarray:
        v = ch[column][ok]
        out = rep_ids[v]
        out[is_team] = team_names[v[is_team]]
        return out

    return _frame(
        "rep_history",
        {
            "rep_id": rep_ids[ch["person"][ok]],
            "changed_at": raw.clock.to_datetime(ch["time"][ok]),
            "field": np.where(is_team, "team", schema.MANAGER_FIELD).astype(object),
            "old_value": values("old"),
            "new_value": values("new"),
        },
    )


def _history(raw: RawOrg, end: int, keep: np.ndarray) -> dict[str, np.ndarray]:
    """Initial rows, the lifecycle's changes before close, the close rows; sorted, with old."""
    deals, ev = raw.deals, raw.events
    created = deals["created"]
    close = deals["close"]
    d0 = np.flatnonzero(keep)
    parts_deal = [d0, d0, d0]
    parts_time = [created[d0]] * 3
    parts_field = [
        np.full(len(d0), FIELD_STAGE),
        np.full(len(d0), FIELD_AMOUNT),
        np.full(len(d0), FIELD_EXPECTED),
    ]
    parts_value = [
        deals["start_stage"][d0].astype(float),
        deals["amount0"][d0],
        deals["expected0"][d0].astype(float),
    ]
    hd, ht = ev["hist_deal"], ev["hist_time"]
    ok = (ht < close[hd]) & (ht < end) & keep[hd]
    parts_deal.append(hd[ok])
    parts_time.append(ht[ok])
    parts_field.append(ev["hist_field"][ok].astype(np.int64))
    parts_value.append(ev["hist_value"][ok])
    dc = np.flatnonzero((close < end) & keep)
    pulled = dc[~np.isnan(deals["close_amount"][dc])]
    parts_deal += [pulled, dc]
    parts_time += [close[pulled], close[dc]]
    parts_field += [np.full(len(pulled), FIELD_AMOUNT), np.full(len(dc), FIELD_STAGE)]
    parts_value += [
        deals["close_amount"][pulled],
        np.where(deals["won"][dc], STAGE_WON, STAGE_LOST).astype(float),
    ]
    deal = np.concatenate(parts_deal)
    time = np.concatenate(parts_time)
    field = np.concatenate(parts_field)
    value = np.concatenate(parts_value)
    # close rows come last among equal times (the amount cut at close precedes the stage row)
    rank = np.arange(len(deal))
    order = np.lexsort((rank, time, field, deal))
    deal, time, field, value = deal[order], time[order], field[order], value[order]
    same = np.r_[False, (deal[1:] == deal[:-1]) & (field[1:] == field[:-1])]
    old = np.where(same, np.r_[np.nan, value[:-1]], np.nan)
    # drop no-op changes (e.g. a pull-in discount that rounds to the same amount)
    keep = ~same | (value != old)
    deal, time, field, value, old = deal[keep], time[keep], field[keep], value[keep], old[keep]
    same = np.r_[False, (deal[1:] == deal[:-1]) & (field[1:] == field[:-1])]
    old = np.where(same, np.r_[np.nan, value[:-1]], np.nan)
    # present rows in deal, then time order (stable: initial stage/amount/date first)
    order = np.lexsort((field, time, deal))
    return {
        "deal": deal[order],
        "time": time[order],
        "field": field[order],
        "value": value[order],
        "old": old[order],
    }


def _transfers(raw: RawOrg, cut: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """Owner changes of the kept deals up to their ``cut`` (close, or just before extraction).

    The same transfers decide the deals table's owner (``owner_at(deal, cut)``), so replaying
    the history reproduces it; a quarter-end pull-in can move a close before a transfer.
    """
    moves = raw.ledger.transfers()
    ok = keep[moves["deal"]] & (moves["time"] <= cut[moves["deal"]])
    return {name: values[ok] for name, values in moves.items()}


def _replay(hist: dict[str, np.ndarray], n_deals: int) -> dict[str, np.ndarray]:
    """Last value per deal and field: the state at extraction."""
    out = {}
    for code, name in (
        (FIELD_STAGE, "stage"),
        (FIELD_AMOUNT, "amount"),
        (FIELD_EXPECTED, "expected"),
    ):
        rows = hist["field"] == code
        d = hist["deal"][rows]
        t = hist["time"][rows]
        v = hist["value"][rows]
        order = np.lexsort((t, d))
        d, v = d[order], v[order]
        last = np.r_[d[1:] != d[:-1], True]
        arr = np.full(n_deals, np.nan)
        arr[d[last]] = v[last]
        out[name] = arr
    out["expected"] = np.nan_to_num(out["expected"], nan=0.0)
    out["stage"] = np.nan_to_num(out["stage"], nan=0.0)
    return out


def _day_table(clock, hist: dict[str, np.ndarray]) -> np.ndarray:
    exp = hist["value"][hist["field"] == FIELD_EXPECTED]
    max_day = int(np.max(exp, initial=0) // MINUTES_PER_DAY) + 2
    return day_strings(clock.start, max_day, "%Y-%m-%d")


def _format_values(field: np.ndarray, value: np.ndarray, days: np.ndarray) -> np.ndarray:
    """History values as text: stage names, plain decimal amounts, ISO dates."""
    out = np.full(len(value), None, dtype=object)
    present = ~np.isnan(value)
    rows = np.flatnonzero(present & (field == FIELD_STAGE))
    out[rows] = STAGE_NAMES[value[rows].astype(np.int64)]
    rows = np.flatnonzero(present & (field == FIELD_AMOUNT))
    unique, inverse = np.unique(value[rows], return_inverse=True)
    out[rows] = np.array([f"{v:.2f}" for v in unique], dtype=object)[inverse]
    rows = np.flatnonzero(present & (field == FIELD_EXPECTED))
    out[rows] = days[(value[rows] // MINUTES_PER_DAY).astype(np.int64)]
    return out


def _contact_ids(account_ids: pa.Array, account: np.ndarray, contact: np.ndarray) -> pa.Array:
    suffix = np.array([f"-C{i}" for i in range(int(np.max(contact, initial=0)) + 1)], dtype=object)
    return pc.binary_join_element_wise(take(account_ids, account), take(suffix, contact), "")


def _durations(kind: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Minutes per activity: short calls, 30-60 minute meetings, longer demos, no duration for
    emails and tasks."""
    n = len(kind)
    out = np.full(n, np.nan)
    calls = kind == ACT_CALL
    out[calls] = np.maximum(1.0, np.round(np.exp(rng.normal(np.log(6.0), 0.7, calls.sum()))))
    meet = kind == ACT_MEETING
    out[meet] = rng.choice([30.0, 30.0, 45.0, 60.0], meet.sum())
    demo = kind == ACT_DEMO
    out[demo] = rng.choice([45.0, 60.0, 60.0, 90.0], demo.sum())
    return out


EMAIL_BATCH = 400_000
"""Emails rendered per batch: bounds the memory of intermediate Python strings."""


def _render_in_batches(
    raw: RawOrg,
    m_deal: np.ndarray,
    m_time: np.ndarray,
    m_rep: np.ndarray,
    m_account: np.ndarray,
    m_contact: np.ndarray,
    inbound: np.ndarray,
    label: np.ndarray,
    rep_first: np.ndarray,
    rep_last: np.ndarray,
    rng: np.random.Generator,
    progress: Progress | None,
) -> text.RenderedEmails:
    """Render email text batch by batch, keeping only compact Arrow results."""
    n = len(m_deal)
    parts: list[text.RenderedEmails] = []
    batches = max(1, -(-n // EMAIL_BATCH))
    for b in range(batches):
        sl = slice(b * EMAIL_BATCH, min(n, (b + 1) * EMAIL_BATCH))
        fills = _fills(
            raw, m_deal[sl], m_time[sl], m_rep[sl], m_account[sl], m_contact[sl],
            rep_first, rep_last, rng,
        )  # fmt: skip
        r = text.render_emails(inbound[sl], label[sl], fills, raw.config.email, rng)
        parts.append(
            text.RenderedEmails(
                subject=pa.array(r.subject, pa.string()),
                body=r.body,
                sentence_labels=pa.array(r.sentence_labels, pa.string()),
                mixed=r.mixed,
                quoted=r.quoted,
            )
        )
        if progress is not None:
            progress("emails", b + 1, batches)
    return text.RenderedEmails(
        subject=pa.chunked_array([p.subject for p in parts], pa.string()),
        body=pa.chunked_array([p.body for p in parts], pa.string()),
        sentence_labels=pa.chunked_array([p.sentence_labels for p in parts], pa.string()),
        mixed=np.concatenate([p.mixed for p in parts]),
        quoted=np.concatenate([p.quoted for p in parts]),
    )


def _fills(
    raw: RawOrg,
    m_deal: np.ndarray,
    m_time: np.ndarray,
    m_rep: np.ndarray,
    m_account: np.ndarray,
    m_contact: np.ndarray,
    rep_first: np.ndarray,
    rep_last: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per-email values for the template fields (lookups, not per-email formatting)."""
    n = len(m_deal)
    acc = raw.accounts
    deals = raw.deals
    fn = np.asarray(catalog.FIRST_NAMES, dtype=object)
    ln = np.asarray(catalog.LAST_NAMES, dtype=object)
    fn_low = np.array([s.lower() for s in fn], dtype=object)
    ln_low = np.array([s.lower() for s in ln], dtype=object)
    # a contact's identity is stable: derived from (account, contact number)
    h = (m_account.astype(np.int64) * 2654435761 + m_contact * 40503 + 12345) % 1_000_003
    cf, cl = h % len(fn), (h // len(fn)) % len(ln)
    titles = np.asarray(catalog.JOB_TITLES, dtype=object)
    domain = acc.domain[m_account]
    rf = rep_first[m_rep]
    rl = rep_last[m_rep]
    rf_low = np.array([s.lower() for s in catalog.FIRST_NAMES], dtype=object)
    rl_low = np.array([s.lower() for s in catalog.LAST_NAMES], dtype=object)
    people = raw.people
    n_days = int((m_time.max(initial=0) // MINUTES_PER_DAY) + 20)
    start = raw.clock.start
    future = (m_time // MINUTES_PER_DAY) + rng.integers(2, 15, n)
    date_str = day_strings(start, n_days, "%A, %B %-d")[future]
    weekday = day_strings(start, n_days, "%A")[future]
    quarter = np.array(["Q1", "Q2", "Q3", "Q4"], dtype=object)[
        (pd.DatetimeIndex(raw.clock.to_datetime(m_time)).month.to_numpy() - 1) // 3
    ]
    earlier = np.maximum(m_time - rng.integers(60, 4 * MINUTES_PER_DAY, n), 0)
    q_day = day_strings(start, n_days, "%a, %b %-d, %Y")[earlier // MINUTES_PER_DAY]
    minute_of_day = earlier % MINUTES_PER_DAY
    clock_strings = np.array(
        [f"{(m // 60) % 12 or 12}:{m % 60:02d} {'AM' if m < 720 else 'PM'}" for m in range(1440)],
        dtype=object,
    )
    amount = deals["amount0"][m_deal]
    unique_amounts, inverse = np.unique(amount, return_inverse=True)
    amount_str = np.array([f"${v:,.0f}" for v in unique_amounts], dtype=object)[inverse]
    tokens = np.array([f"{x:08x}" for x in rng.integers(0, 2**32, 4096)], dtype=object)
    phones = np.array(
        [f"+1 (555) {x // 10000:03d}-{x % 10000:04d}" for x in rng.integers(0, 9_999_999, 997)],
        dtype=object,
    )
    return {
        "c_first": fn[cf],
        "c_full": fn[cf] + " " + ln[cl],
        "c_email": fn_low[cf] + "." + ln_low[cl] + "@" + domain,
        "c_title": titles[h % len(titles)],
        "r_first": rf,
        "r_full": rf + " " + rl,
        "r_email": rf_low[people.first[m_rep]] + "." + rl_low[people.last[m_rep]] + "@pulse.io",
        "company": acc.name[m_account],
        "product": np.asarray(catalog.PRODUCTS, dtype=object)[deals["product"][m_deal]],
        "amount": amount_str,
        "date": date_str,
        "weekday": weekday,
        "competitor": np.asarray(catalog.COMPETITORS, dtype=object)[
            rng.integers(0, len(catalog.COMPETITORS), n)
        ],
        "quarter": quarter,
        "q_header": q_day + " at " + clock_strings[minute_of_day],
        "domain": domain,
        "token": tokens[rng.integers(0, len(tokens), n)],
        "phone": phones[rng.integers(0, len(phones), n)],
    }


def _truth(
    raw: RawOrg,
    rep_ids: np.ndarray,
    deal_ids: np.ndarray,
    email_ids: pa.Array,
    label: np.ndarray,
    inbound: np.ndarray,
    rendered: text.RenderedEmails,
    m_deal: np.ndarray,
    m_time: np.ndarray,
) -> dict[str, pd.DataFrame]:
    """Latent ground truth: not part of the contract, for evaluation and tests only."""
    clock = raw.clock
    deals = raw.deals
    end = clock.end
    month_start = np.array(
        [
            np.datetime64(clock.start + pd.DateOffset(months=int(m)), "ns")
            for m in range(clock.months)
        ]
    )
    origin = raw.flags["origin"]
    warmup = int(np.searchsorted(clock.month_starts, origin))
    rm = {k: v[raw.rep_months["month"] >= warmup] for k, v in raw.rep_months.items()}
    rep_months = pd.DataFrame(
        {
            "rep_id": pd.array(rep_ids[rm["rep"]], dtype=STR),
            "month_start": month_start[rm["month"]],
            "skill": rm["skill"],
            "engagement": rm["engagement"],
            "manager_id": pd.array(rep_ids[rm["manager"]], dtype=STR),
            "manager_quality": rm["manager_quality"],
            "manager_changed_recently": rm["manager_changed"],
            "pay_level": rm["pay_level"],
            "underpay_gap": rm["underpay_gap"],
            "recent_hike": rm["recent_hike"],
            "attrition_hazard": rm["attrition_hazard"],
            "resigning": rm["resigning"],
            "tenure_months": rm["tenure_months"],
            "territory_potential": rm["potential"],
            "segment_focus": pd.array(SEGMENT_NAMES[rm["focus"]], dtype=STR),
        }
    )
    keep = clock.quarter_starts[raw.quarters["quarter"]] >= origin
    qt = {k: raw.quarters[k][keep] for k in raw.quarters.columns}
    period_start = np.array([np.datetime64(ts, "ns") for ts in clock.quarter_labels])[qt["quarter"]]
    people = raw.people
    rep_quarters = pd.DataFrame(
        {
            "rep_id": pd.array(rep_ids[qt["rep"]], dtype=STR),
            "period_start": period_start,
            "quota": qt["quota"],
            "bookings": qt["bookings"],
            "attainment": qt["attainment"],
            "employed_share": qt["employed_share"],
            "full_quarter": qt["employed_share"] >= 0.999,
            "finalized": qt["finalized"],
            "hiked_after": qt["hiked_after"],
            "pay_level": qt["pay_level"],
        }
    )
    rs = raw.raises
    r_ok = (rs["time"] >= origin) & (rs["time"] < end)
    raises = pd.DataFrame(
        {
            "rep_id": pd.array(rep_ids[rs["rep"][r_ok]], dtype=STR),
            "effective_at": clock.to_datetime(rs["time"][r_ok]),
            "raise_pct": rs["raise_pct"][r_ok],
            "pay_level_before": rs["pay_level_before"][r_ok],
            "pay_level_after": rs["pay_level_after"][r_ok],
            "trailing_attainment": rs["trailing_attainment"][r_ok],
            "underpay_gap_before": rs["underpay_gap_before"][r_ok],
            "market_correction": rs["market_correction"][r_ok],
        }
    )
    exits = np.array(raw.manager_exits, dtype=np.int64).reshape(-1, 3)
    exits = exits[exits[:, 1] < end]
    manager_exits = pd.DataFrame(
        {
            "manager_id": pd.array(rep_ids[exits[:, 0]], dtype=STR),
            "exit_at": clock.to_datetime(exits[:, 1]),
            "quality": people.quality[exits[:, 0]],
            "replacement_id": pd.array(rep_ids[exits[:, 2]], dtype=STR),
            "replacement_arrives_at": clock.to_datetime(people.hire[exits[:, 2]]),
            "replacement_quality": people.quality[exits[:, 2]],
        }
    )
    keep_deal = (deals["created"] < end) & (deals["close"] >= origin)
    d = np.flatnonzero(keep_deal)
    close = deals["close"][d]
    deal_truth = pd.DataFrame(
        {
            "deal_id": pd.array(deal_ids[d], dtype=STR),
            "segment": pd.array(SEGMENT_NAMES[deals["segment"][d]], dtype=STR),
            "health_at_creation": deals["health0"][d],
            "health_at_end": deals["health_end"][d],
            "account_fit": deals["fit"][d],
            "rep_skill": deals["skill"][d],
            "rep_engagement": deals["engagement"][d],
            "n_contacts": deals["n_contacts"][d],
            "n_slips": deals["n_slips"][d],
            "eventual_outcome": pd.array(np.where(deals["won"][d], "won", "lost"), dtype=STR),
            "eventual_closed_at": clock.to_datetime(close),
            "open_at_extraction": close >= end,
            "pulled_in": deals["pulled"][d],
            "pushed_out": deals["pushed"][d],
            "original_rep_id": pd.array(rep_ids[deals["rep"][d]], dtype=STR),
        }
    )
    email_truth = pd.DataFrame(
        {
            "email_id": pd.array(email_ids, dtype=STR),
            "deal_id": pd.array(take(deal_ids, m_deal), dtype=STR),
            "direction": pd.array(
                take(np.array(["outbound", "inbound"], dtype=object), inbound.astype(int)),
                dtype=STR,
            ),
            "label": pd.array(take(np.asarray(text.LABELS, dtype=object), label), dtype=STR),
            "sentence_labels": pd.array(rendered.sentence_labels, dtype=STR),
            "mixed": rendered.mixed,
            "quoted": rendered.quoted,
        }
    )
    ev = raw.events
    s_ok = (ev["step_time"] < np.minimum(deals["close"][ev["step_deal"]], end)) & keep_deal[
        ev["step_deal"]
    ]
    deal_steps = pd.DataFrame(
        {
            "deal_id": pd.array(take(deal_ids, ev["step_deal"][s_ok]), dtype=STR),
            "step_start": clock.to_datetime(ev["step_time"][s_ok]),
            "health": ev["step_health"][s_ok],
            "stage": pd.array(take(STAGE_NAMES, ev["step_stage"][s_ok]), dtype=STR),
            "dead": ev["step_dead"][s_ok],
        }
    )
    quits = np.flatnonzero(
        (people.decided < end) & (people.decided >= origin) & (people.hire < end)
    )
    resignations = pd.DataFrame(
        {
            "rep_id": pd.array(rep_ids[quits], dtype=STR),
            "decided_at": clock.to_datetime(people.decided[quits]),
            "exit_at": clock.to_datetime(people.exit[quits]),
            "left_by_extraction": people.exit[quits] < end,
        }
    )
    return {
        "rep_months": rep_months,
        "resignations": resignations,
        "rep_quarters": rep_quarters,
        "raises": raises,
        "manager_exits": manager_exits,
        "deals": deal_truth,
        "emails": email_truth,
        "deal_steps": deal_steps,
    }
