"""Adapter for the Maven Analytics "CRM Sales Opportunities" export.

The export is a folder of CSVs: ``sales_pipeline.csv`` (one row per opportunity),
``accounts.csv``, ``products.csv`` and ``sales_teams.csv``.  It holds final states only, so
the adapter reconstructs a minimal history and fills the contract's gaps with documented
rules; every filled value is flagged in an extra ``*_imputed`` column.  The rules, and why
each one is leak-free, are in ``docs/adapters.md``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.data.adapters._frames import conform, empty_table, raise_problems, row_problems
from spm_ml.data.problems import Problem
from spm_ml.data.tables import Tables
from spm_ml.errors import SchemaError, SourceError

logger = logging.getLogger(__name__)

PIPELINE = "sales_pipeline.csv"
ACCOUNTS = "accounts.csv"
PRODUCTS = "products.csv"
TEAMS = "sales_teams.csv"

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    PIPELINE: (
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ),
    ACCOUNTS: (
        "account",
        "sector",
        "year_established",
        "revenue",
        "employees",
        "office_location",
        "subsidiary_of",
    ),
    PRODUCTS: ("product", "series", "sales_price"),
    TEAMS: ("sales_agent", "manager", "regional_office"),
}
"""Columns read from each file; other columns in a file are ignored."""

DATE_FORMAT = "%m/%d/%Y"
"""Dates in the export are M/D/YYYY (``3/1/2017``); nothing else is accepted."""

STAGES = {
    "Prospecting": "prospecting",
    "Engaging": "discovery",
    "Won": "closed_won",
    "Lost": "closed_lost",
}
OUTCOMES = {"Won": "won", "Lost": "lost"}

PRODUCT_ALIASES = {"GTXPro": "GTX Pro"}
"""Pipeline product names that differ from ``products.csv`` (the catalogue's name wins)."""

SECTOR_FIXES = {"technolgy": "technology"}
COUNTRY_FIXES = {"Philipines": "Philippines"}
"""Typos in ``accounts.csv``; the fixed spellings do not occur in the file, so nothing merges."""

UNKNOWN = "unknown"
"""Placeholder account for deals without one, and the value of unknown text attributes."""

AGENT_ROLE = "sales_agent"
MANAGER_ROLE = "manager"
FALLBACK_CYCLE_DAYS = 30
"""Sales cycle used for ``expected_close_at`` when the export has no closed deal at all."""

NON_FEATURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "reps": ("rep_name", "hire_date_imputed"),
    "accounts": ("is_placeholder",),
    "deals": (
        "amount_imputed",
        "created_at_imputed",
        "expected_close_at_imputed",
        "account_imputed",
    ),
}
"""Extras that must never become model features: names, and flags that follow the outcome.

``amount_imputed`` is true exactly for the deals that were not won, and the other flags are
true only for deals still open at export time.
"""


def load_maven_crm(folder: str | Path) -> Tables:
    """Map the Maven CRM export in ``folder`` to the data contract.

    Parameters
    ----------
    folder
        Folder holding ``sales_pipeline.csv``, ``accounts.csv``, ``products.csv`` and
        ``sales_teams.csv`` as published by Maven Analytics.

    Returns
    -------
    Tables
        reps (agents and their managers), accounts (plus placeholders for deals without a
        known account), deals, a reconstructed deal_history and empty activities, emails,
        quotas and compensation.  ``extracted_at`` is the latest date in the pipeline file.

    Raises
    ------
    SourceError
        A file is missing or is not UTF-8 CSV.
    SchemaError
        A column is missing or a cell cannot be mapped (bad date, unknown stage or product,
        duplicate id...); ``err.problems`` names every such cell by file, line and column.

    Examples
    --------
    >>> tables = load_maven_crm("../shared/data/maven_crm")  # doctest: +SKIP
    >>> tables.deals["outcome"].value_counts()  # doctest: +SKIP
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder; expected the Maven CRM export folder")
    raw = {name: _read(folder, name) for name in REQUIRED_COLUMNS}
    problems: list[Problem] = []
    catalogue = _parse_products(raw[PRODUCTS], problems)
    accounts = _parse_accounts(raw[ACCOUNTS], problems)
    pipe = _parse_pipeline(raw[PIPELINE], catalogue, problems)
    teams = _parse_teams(raw[TEAMS], problems)
    raise_problems(problems, f"Maven CRM export {folder}")

    dates = pd.concat([pipe["engage_date"], pipe["close_date"]])
    if dates.isna().all():
        raise SchemaError(f"{folder / PIPELINE}: no engage_date or close_date in any row")
    extracted_at = dates.max()
    deals = _deals(pipe, catalogue, extracted_at)
    accounts = _with_placeholders(accounts, deals)
    reps = _reps(teams, pipe["sales_agent"], deals)
    history = _history(deals, pipe)
    logger.info(
        "maven-crm: %d deals (%d with account %r), %d reps, %d accounts, extracted_at %s",
        len(deals),
        int((deals["account_id"] == UNKNOWN).sum()),
        UNKNOWN,
        len(reps),
        len(accounts),
        extracted_at.date(),
    )
    return Tables(
        reps=conform("reps", reps),
        accounts=conform("accounts", accounts),
        deals=conform("deals", deals),
        deal_history=conform("deal_history", history),
        activities=empty_table("activities"),
        emails=empty_table("emails"),
        quotas=empty_table("quotas"),
        compensation=empty_table("compensation"),
        extracted_at=extracted_at,
        non_feature_columns=NON_FEATURE_COLUMNS,
    )


def rep_id_for(name: str) -> str:
    """The rep_id of an agent or manager: the name as an ASCII slug (``Mei-Mei Johns`` ->
    ``mei-mei-johns``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.is_file():
        raise SourceError(
            f"{path}: not found; a Maven CRM export folder holds {', '.join(REQUIRED_COLUMNS)}"
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{path}: cannot be read as UTF-8 CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(frame.columns)});"
            " is this the Maven CRM export?",
            [
                Problem(name, "-", c, "missing_column", "required column is missing")
                for c in missing
            ],
        )
    return pd.DataFrame({c: frame[c].astype("str").str.strip() for c in REQUIRED_COLUMNS[name]})


def _dates(frame: pd.DataFrame, file: str, column: str, key: str, problems: list) -> pd.Series:
    text = frame[column]
    present = text != ""
    parsed = pd.to_datetime(text.where(present), format=DATE_FORMAT, errors="coerce")
    row_problems(
        problems, file, frame, present & parsed.isna(), column, "bad_datetime",
        "is not a M/D/YYYY date", key=key,
    )  # fmt: skip
    return parsed.astype("datetime64[ns]")


def _numbers(
    frame: pd.DataFrame, file: str, column: str, key: str, problems: list, *, whole: bool = False
) -> pd.Series:
    text = frame[column]
    present = text != ""
    parsed = pd.to_numeric(text.where(present), errors="coerce").astype("float64")
    bad = present & parsed.isna()
    row_problems(problems, file, frame, bad, column, "not_numeric", "is not a number", key=key)
    negative = parsed < 0
    row_problems(problems, file, frame, negative, column, "negative_value", "is negative", key=key)
    if whole:
        fractional = parsed.notna() & (parsed != np.floor(parsed))
        row_problems(
            problems, file, frame, fractional, column, "not_integer", "is not a whole number",
            key=key,
        )  # fmt: skip
    return parsed


def _required(frame: pd.DataFrame, file: str, column: str, key: str, problems: list) -> None:
    blank = frame[column] == ""
    row_problems(problems, file, frame, blank, column, "missing_value", "is required", key=key)


def _unique(frame: pd.DataFrame, file: str, column: str, problems: list) -> None:
    values = frame[column]
    duplicated = values.duplicated() & (values != "")
    row_problems(problems, file, frame, duplicated, column, "duplicate_id", "appears twice")


def _text_or_unknown(values: pd.Series) -> pd.Series:
    return values.mask(values == "", UNKNOWN)


def _parse_products(raw: pd.DataFrame, problems: list) -> pd.DataFrame:
    _required(raw, PRODUCTS, "product", "product", problems)
    _unique(raw, PRODUCTS, "product", problems)
    price = _numbers(raw, PRODUCTS, "sales_price", "product", problems)
    _required(raw, PRODUCTS, "sales_price", "product", problems)
    return pd.DataFrame(
        {"series": _text_or_unknown(raw["series"]).to_numpy(), "sales_price": price.to_numpy()},
        index=pd.Index(raw["product"], name="product"),
    )


def _parse_accounts(raw: pd.DataFrame, problems: list) -> pd.DataFrame:
    key = "account"
    _required(raw, ACCOUNTS, key, key, problems)
    _unique(raw, ACCOUNTS, key, problems)
    reserved = raw[key] == UNKNOWN
    row_problems(
        problems, ACCOUNTS, raw, reserved, key, "reserved_id",
        "is reserved for the placeholder account of deals without one; rename the account",
    )  # fmt: skip
    return pd.DataFrame(
        {
            "account_id": raw[key],
            "industry": _text_or_unknown(raw["sector"]).replace(SECTOR_FIXES),
            "employees": _numbers(raw, ACCOUNTS, "employees", key, problems, whole=True),
            "annual_revenue": _numbers(raw, ACCOUNTS, "revenue", key, problems),
            "region": _text_or_unknown(raw["office_location"]).replace(COUNTRY_FIXES),
            "year_established": _numbers(
                raw, ACCOUNTS, "year_established", key, problems, whole=True
            ).astype("Int64"),
            "subsidiary_of": raw["subsidiary_of"].mask(raw["subsidiary_of"] == ""),
            "is_placeholder": False,
        }
    )


def _parse_teams(raw: pd.DataFrame, problems: list) -> pd.DataFrame:
    _required(raw, TEAMS, "sales_agent", "sales_agent", problems)
    _unique(raw, TEAMS, "sales_agent", problems)
    return raw


def _parse_pipeline(raw: pd.DataFrame, catalogue: pd.DataFrame, problems: list) -> pd.DataFrame:
    key = "opportunity_id"
    _required(raw, PIPELINE, key, key, problems)
    _unique(raw, PIPELINE, key, problems)
    _required(raw, PIPELINE, "sales_agent", key, problems)
    stage = raw["deal_stage"]
    row_problems(
        problems, PIPELINE, raw, ~stage.isin(list(STAGES)), "deal_stage", "bad_enum",
        f"is not one of {', '.join(STAGES)}", key=key,
    )  # fmt: skip
    product = raw["product"].replace(PRODUCT_ALIASES)
    row_problems(
        problems, PIPELINE, raw, ~product.isin(catalogue.index), "product", "unknown_product",
        f"is not in {PRODUCTS} (add it there, or an alias to PRODUCT_ALIASES)", key=key,
    )  # fmt: skip
    engage = _dates(raw, PIPELINE, "engage_date", key, problems)
    close = _dates(raw, PIPELINE, "close_date", key, problems)
    value = _numbers(raw, PIPELINE, "close_value", key, problems)

    closed = stage.isin(list(OUTCOMES))
    is_open = stage.isin(["Prospecting", "Engaging"])
    for column in ("engage_date", "close_date", "close_value"):
        row_problems(
            problems, PIPELINE, raw, closed & (raw[column] == ""), column, "missing_value",
            "is required for Won and Lost deals", key=key,
        )  # fmt: skip
    for column in ("close_date", "close_value"):
        row_problems(
            problems, PIPELINE, raw, is_open & (raw[column] != ""), column, "inconsistent_state",
            "is set but the deal is still open (Engaging/Prospecting)", key=key,
        )  # fmt: skip
    row_problems(
        problems, PIPELINE, raw, close < engage, "close_date", "date_order",
        "is before the deal's engage_date", key=key,
    )  # fmt: skip
    return pd.DataFrame(
        {
            "opportunity_id": raw[key],
            "sales_agent": raw["sales_agent"],
            "product": product,
            "account": raw["account"],
            "deal_stage": stage,
            "engage_date": engage,
            "close_date": close,
            "close_value": value,
        }
    )


def _deals(pipe: pd.DataFrame, catalogue: pd.DataFrame, extracted_at: pd.Timestamp):
    stage = pipe["deal_stage"]
    closed = stage.isin(list(OUTCOMES))
    won = stage == "Won"
    engage, close = pipe["engage_date"], pipe["close_date"]

    # Prospecting deals were never engaged: the latest time they can have been created.
    created = engage.fillna(extracted_at)
    cycle_days = (close - engage)[closed].dt.days.median()
    if pd.isna(cycle_days):
        cycle_days = FALLBACK_CYCLE_DAYS
    # One constant for all deals (won and lost alike), so it carries no outcome information.
    cycle = pd.Timedelta(days=round(float(cycle_days)))
    logger.info("maven-crm: expected_close_at = created_at + %d days", cycle.days)

    list_price = pipe["product"].map(catalogue["sales_price"])
    # Lost deals show close_value 0 and open ones none: a 0 amount would reveal the outcome.
    amount = pipe["close_value"].where(won, list_price)
    no_account = pipe["account"] == ""
    return pd.DataFrame(
        {
            "deal_id": pipe["opportunity_id"],
            "rep_id": pipe["sales_agent"].map(rep_id_for),
            "account_id": pipe["account"].mask(no_account, UNKNOWN),
            "product": pipe["product"],
            "amount": amount,
            "created_at": created,
            "expected_close_at": created + cycle,
            "closed_at": close.where(closed),
            "stage": stage.map(STAGES),
            "outcome": stage.map(OUTCOMES),
            "product_series": pipe["product"].map(catalogue["series"]),
            "sales_price": list_price,
            "amount_imputed": ~won,
            "created_at_imputed": engage.isna(),
            "expected_close_at_imputed": True,
            "account_imputed": no_account,
        }
    )


def _with_placeholders(accounts: pd.DataFrame, deals: pd.DataFrame) -> pd.DataFrame:
    """Add an account for every account_id a deal uses that accounts.csv lacks."""
    used = pd.Index(deals["account_id"].unique())
    missing = used.difference(pd.Index(accounts["account_id"]))
    if missing.empty:
        return accounts
    counts = deals["account_id"].value_counts()
    for account in missing:
        # Blank accounts on open deals are normal in this export; unknown names are not.
        log = logger.info if account == UNKNOWN else logger.warning
        log(
            "maven-crm: %d deal(s) with account %r not in %s; added as a placeholder account",
            counts[account],
            account,
            ACCOUNTS,
        )
    placeholders = pd.DataFrame(
        {
            "account_id": missing.to_numpy(),
            "industry": UNKNOWN,
            "employees": pd.array([pd.NA] * len(missing), dtype="Int64"),
            "annual_revenue": np.nan,
            "region": UNKNOWN,
            "year_established": pd.array([pd.NA] * len(missing), dtype="Int64"),
            "subsidiary_of": pd.Series([np.nan] * len(missing), dtype="str"),
            "is_placeholder": True,
        }
    )
    return pd.concat([accounts, placeholders], ignore_index=True)


def _reps(teams: pd.DataFrame, deal_agents: pd.Series, deals: pd.DataFrame) -> pd.DataFrame:
    """Agents from sales_teams.csv (plus any agent only the pipeline names), then managers."""
    unlisted = sorted(set(deal_agents) - set(teams["sales_agent"]))
    if unlisted:
        logger.warning(
            "maven-crm: %d agent(s) with deals are not in %s (%s); added with team and region %r",
            len(unlisted),
            TEAMS,
            ", ".join(unlisted),
            UNKNOWN,
        )
        extra = pd.DataFrame({"sales_agent": unlisted, "manager": "", "regional_office": ""})
        teams = pd.concat([teams, extra], ignore_index=True)

    first_created = deals["created_at"].groupby(deal_agents.to_numpy()).min()
    # An agent was hired before their first deal; agents without deals before the first deal.
    starts = teams["sales_agent"].map(first_created).fillna(deals["created_at"].min())
    agents = pd.DataFrame(
        {
            "rep_name": teams["sales_agent"],
            "manager_name": teams["manager"].mask(teams["manager"] == ""),
            "region": _text_or_unknown(teams["regional_office"]),
            "role": AGENT_ROLE,
            "hire_date": starts - pd.Timedelta(days=1),
        }
    )
    agents["team"] = agents["manager_name"].fillna(UNKNOWN)

    managed = agents[agents["manager_name"].notna()]
    managed = managed[~managed["manager_name"].isin(agents["rep_name"])]
    managers = managed.groupby("manager_name", sort=False).agg(
        region=("region", "first"), hire_date=("hire_date", "min")
    )
    managers = managers.reset_index().rename(columns={"manager_name": "rep_name"})
    managers["manager_name"] = np.nan
    managers["team"] = managers["rep_name"]
    managers["role"] = MANAGER_ROLE

    reps = pd.concat([managers, agents], ignore_index=True)
    reps["rep_id"] = reps["rep_name"].map(rep_id_for)
    clash = reps["rep_id"].duplicated(keep=False)
    if clash.any():
        names = ", ".join(sorted(reps.loc[clash, "rep_name"]))
        raise SchemaError(f"{TEAMS}: names {names} map to the same rep_id; rename one of them")
    reps["manager_id"] = reps["manager_name"].map(rep_id_for, na_action="ignore")
    reps["exit_date"] = pd.NaT
    reps["exit_reason"] = np.nan
    reps["hire_date_imputed"] = True
    return reps.drop(columns="manager_name")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _history(deals: pd.DataFrame, pipe: pd.DataFrame) -> pd.DataFrame:
    """Initial stage, amount and expected close at created_at; the closing moves at closed_at.

    The initial amount is the list price for every deal: it is what was known when the deal
    was engaged.  A won deal whose close_value differs gets an amount change at closed_at.
    """
    initial_stage = np.where(pipe["engage_date"].notna(), STAGES["Engaging"], STAGES["Prospecting"])
    start = pd.DataFrame({"deal_id": deals["deal_id"], "changed_at": deals["created_at"]})
    rows = [
        start.assign(field="stage", old_value=np.nan, new_value=initial_stage),
        start.assign(
            field="amount", old_value=np.nan, new_value=deals["sales_price"].map(_number_text)
        ),
        start.assign(
            field="expected_close_at",
            old_value=np.nan,
            new_value=deals["expected_close_at"].dt.strftime("%Y-%m-%d"),
        ),
    ]
    closed = deals["closed_at"].notna()
    repriced = closed & (deals["amount"] != deals["sales_price"])
    rows.append(
        pd.DataFrame(
            {
                "deal_id": deals.loc[repriced, "deal_id"],
                "changed_at": deals.loc[repriced, "closed_at"],
                "field": "amount",
                "old_value": deals.loc[repriced, "sales_price"].map(_number_text),
                "new_value": deals.loc[repriced, "amount"].map(_number_text),
            }
        )
    )
    rows.append(
        pd.DataFrame(
            {
                "deal_id": deals.loc[closed, "deal_id"],
                "changed_at": deals.loc[closed, "closed_at"],
                "field": "stage",
                "old_value": pd.Series(initial_stage, index=deals.index)[closed],
                "new_value": deals.loc[closed, "stage"],
            }
        )
    )
    history = pd.concat([r.astype({"old_value": "str"}) for r in rows], ignore_index=True)
    return history.sort_values(["changed_at", "deal_id"], kind="stable", ignore_index=True)
