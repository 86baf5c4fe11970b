"""``docs/data-contract.md``, written from the contract in :mod:`spm_ml.data.schema`.

The schema is the authority; the page is its readable copy.  A test compares the committed
page with :func:`contract_markdown`, so a schema change without the page fails the suite.
Regenerate with ``python -m spm_ml.data.contract_doc > docs/data-contract.md``.
"""

from __future__ import annotations

from spm_ml.data.schema import TABLES, Column, TableSchema

INTRO = """\
# The data contract

Every spm-ml pipeline reads these nine tables (`rep_history` optional). This page is generated from
`spm_ml/data/schema.py` (`python -m spm_ml.data.contract_doc > docs/data-contract.md`; a
test fails when it is stale); the code is the authority.
"""

RULES = """\
- **Sources**: a folder with one file per table named after it (`deals.csv` or
  `deals.parquet`), a SQLAlchemy URL with one table per name, or `ADAPTER:PATH`
  (`maven-crm`, `ibm-hr`; see [adapters.md](adapters.md)).
- **Required columns are a minimum**: extra columns are kept as they are. An extra column of
  `deals` is a *custom field*; it becomes a feature (`custom_<name>`) only when the feature
  config names it (`spm-ml train deal-win --custom-field NAME`, MLproject `custom_fields`),
  and only if it passes the leak screen of the flat-export trainer, run on the closed deals'
  values just before their close against their outcome. A field is refused (error, exit 2,
  naming it and why) if it alone separates won from lost (single-column ROC AUC >= 0.95), is
  a date named like the outcome, an identifier, constant or empty, is filled on closed deals
  but not on open ones (a value entered at close), or is listed by the source's adapter as a
  non-feature (`NON_FEATURE_COLUMNS`: names, targets, flags that follow the outcome).
  Numbers stay numbers, text becomes a category, a date becomes the days from the snapshot
  to it.
- **Types**: ids and text as strings; times in ISO 8601 (naive = UTC, offsets converted);
  amounts numeric and >= 0; enums exactly as listed.
- **Time**: `_metadata.json` beside the files holds `extracted_at`, the moment the data was
  pulled; `spm-ml validate --as-of` overrides it. Nothing that *happened* may be dated later.
- **deal_history** starts with one row per field (`stage`, `amount`, `expected_close_at`) at
  `created_at` with the initial value, then one row per change. Features replay it: the
  deals table's `stage`, `amount`, `expected_close_at`, `closed_at`, `outcome` and `rep_id`
  describe the deal at extraction time and are never used as features of an earlier moment.
- **Owner changes** are `deal_history` rows with `field` = `rep_id`: `old_value` the previous
  owner, `new_value` the new one (both must be `reps.rep_id`), `changed_at` the transfer.
  **Custom-field changes** are rows whose `field` is the name of an extra column of `deals`
  (which holds the current value); their values must parse like that column (numbers, dates,
  true/false), and `new_value` may be empty (the field was cleared). For both, the value at a
  moment `t` is the `new_value` of the deal's latest row strictly before `t`; before its
  first row, that row's `old_value`; a deal without rows of the field never changed it, so
  the deals-table value holds. Data without `rep_id` rows has never reassigned a deal.
- **Custom fields without history** are taken as set when the deal was created: the
  deals-table value is used for every moment of the deal's life. A field your CRM changes
  later must have its changes in `deal_history`, or be left out.
- **Rep history**: `rep_history` records changes of a rep's `manager_id` (a reassignment,
  the manager leaving, the backfill arriving) and `team`, one row per change: `old_value`
  the value before, `new_value` the value from `changed_at` on; manager values must be
  `reps.rep_id`. `reps.manager_id` and `reps.team` hold the values at extraction (for a
  leaver, at the exit), so a rep's last row's `new_value` is the reps-table value; the value
  at a moment `t` is the `new_value` of the rep's latest row of the field strictly before
  `t`, before the first row that row's `old_value`, and for a rep without rows the
  reps-table value. The table is optional: a source without it (both adapters, older
  exports) has recorded no change, and gets an empty table. Changes must fall between the
  rep's `hire_date` and `exit_date` (error); a chain whose `old_value` differs from the
  previous row's `new_value`, or whose last value differs from `reps`, is a warning.
- **Fixed attributes**: the contract has no history for a rep's `region`, `role` and
  `hire_date`, nor for accounts (`industry`, `region`, `employees`, `annual_revenue`);
  features read them as facts true at every moment (the simulator never changes them).
  Future-dated facts are never read by features: `reps.exit_date` and
  `exit_reason`, and a deal's `closed_at` and `outcome` before the deal has closed (after
  the close they count in its owner's and account's track record).
- **Validation** (`spm-ml validate SOURCE`) reports every problem with table, row (CSV line or
  row number, plus the id) and column, and exits with status 2; rows are never dropped or
  coerced. `reps`, `accounts` and `deals` must have rows; other tables may be empty (warning;
  an empty or absent `rep_history` is silent).
"""


def contract_markdown() -> str:
    """The whole contract page as Markdown: the rules, then one section per table."""
    parts = [INTRO, RULES]
    parts += [_table_section(schema) for schema in TABLES.values()]
    return "\n".join(parts)


def _table_section(schema: TableSchema) -> str:
    key = ", ".join(schema.primary_key) or "(none)"
    dated = f"; dated by `{schema.event_time}`" if schema.event_time else ""
    lines = [
        f"## `{schema.name}`",
        "",
        schema.doc,
        "",
        f"Key: {key}{dated}",
        "",
        "| column | type | nullable | notes |",
        "|---|---|---|---|",
    ]
    references = {fk.column: f"-> {fk.ref_table}.{fk.ref_column}" for fk in schema.foreign_keys}
    for column in schema.columns:
        known = f"known from `{column.known_at}`" if column.known_at else ""
        notes = "; ".join(n for n in (column.doc, references.get(column.name, ""), known) if n)
        nullable = "yes" if column.nullable else "no"
        lines.append(f"| `{column.name}` | {_type_text(column)} | {nullable} | {notes} |")
    if schema.date_order:
        order = ", ".join(f"`{a}` <= `{b}`" for a, b in schema.date_order)
        lines += ["", f"Date order: {order}"]
    return "\n".join(lines) + "\n"


def _type_text(column: Column) -> str:
    text = column.kind
    if column.values:
        text += f" ({', '.join(column.values)})"
    if column.non_negative:
        text += ", >= 0"
    return text


if __name__ == "__main__":
    print(contract_markdown(), end="")
