"""Bad input: every kind of broken data gets an exact message naming table, row and column."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from spm_ml.cli import app
from spm_ml.data.io import check_source, load_tables, write_tables, write_tables_sql
from spm_ml.errors import SchemaError, SourceError

runner = CliRunner()


def _edit_csv(folder: Path, table: str, edit) -> None:
    path = folder / f"{table}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(path, index=False)


def _validate(source) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", str(source)], catch_exceptions=False)
    return result.exit_code, result.output


def test_valid_folder_passes_and_prints_quality_report(tiny_csv_dir):
    code, out = _validate(tiny_csv_dir)
    assert code == 0, out
    assert "meets the data contract" in out
    assert "deals" in out and "data quality" in out


def test_missing_column(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.drop(columns=["amount"], inplace=True))
    code, out = _validate(tiny_csv_dir)
    assert code == 2
    assert "deals" in out and "amount" in out and "missing_column" in out


def test_duplicate_id_names_both_rows(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.loc.__setitem__((2, "deal_id"), "D1"))
    tables, problems = check_source(tiny_csv_dir)
    dup = [p for p in problems if p.kind == "duplicate_id"]
    assert len(dup) == 1
    assert dup[0].table == "deals" and dup[0].column == "deal_id"
    assert "D1" in dup[0].row and "row 1" in dup[0].message
    assert _validate(tiny_csv_dir)[0] == 2


def test_dangling_foreign_key(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.loc.__setitem__((0, "rep_id"), "GHOST"))
    _, problems = check_source(tiny_csv_dir)
    (p,) = [p for p in problems if p.kind == "dangling_reference"]
    assert (p.table, p.column) == ("deals", "rep_id")
    assert "deal_id=D1" in p.row and "'GHOST' is not a rep_id in reps" in p.message


def test_closed_before_created(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.loc.__setitem__((0, "closed_at"), "2023-12-01"))
    _, problems = check_source(tiny_csv_dir)
    (p,) = [p for p in problems if p.kind == "date_order"]
    assert (p.table, p.column) == ("deals", "closed_at") and "before created_at" in p.message


def test_activity_after_the_data_as_of(tiny_csv_dir):
    _edit_csv(
        tiny_csv_dir, "activities", lambda f: f.loc.__setitem__((1, "occurred_at"), "2030-01-01")
    )
    _, problems = check_source(tiny_csv_dir)
    (p,) = [p for p in problems if p.kind == "after_as_of"]
    assert (p.table, p.column) == ("activities", "occurred_at")
    assert "activity_id=X2" in p.row and "2030-01-01" in p.message


def test_unknown_enum_value(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "activities", lambda f: f.loc.__setitem__((0, "type"), "lunch"))
    code, out = _validate(tiny_csv_dir)
    assert code == 2
    _, problems = check_source(tiny_csv_dir)
    (p,) = [p for p in problems if p.kind == "bad_enum"]
    assert p.row == "line 2 (activity_id=X1)" and p.column == "type" and "'lunch'" in p.message


def test_non_numeric_and_negative_amounts(tiny_csv_dir):
    def edit(f):
        f.loc[0, "amount"] = "12k"
        f.loc[1, "amount"] = "-5"

    _edit_csv(tiny_csv_dir, "deals", edit)
    _, problems = check_source(tiny_csv_dir)
    kinds = {(p.kind, p.row) for p in problems}
    assert ("not_numeric", "line 2 (deal_id=D1)") in kinds
    assert ("negative_value", "line 3 (deal_id=D2)") in kinds


def test_bad_date_and_missing_required_value(tiny_csv_dir):
    def edit(f):
        f.loc[0, "created_at"] = "31/02/2024"
        f.loc[1, "product"] = ""

    _edit_csv(tiny_csv_dir, "deals", edit)
    _, problems = check_source(tiny_csv_dir)
    kinds = {(p.kind, p.column) for p in problems}
    assert ("bad_datetime", "created_at") in kinds and ("missing_value", "product") in kinds


def test_empty_table(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.drop(index=f.index, inplace=True))
    _edit_csv(tiny_csv_dir, "deal_history", lambda f: f.drop(index=f.index, inplace=True))
    _edit_csv(tiny_csv_dir, "emails", lambda f: f.drop(index=f.index, inplace=True))
    _edit_csv(tiny_csv_dir, "activities", lambda f: f.loc.__setitem__((0, "deal_id"), ""))
    code, out = _validate(tiny_csv_dir)
    assert code == 2 and "empty_table" in out
    _, problems = check_source(tiny_csv_dir)
    empty = {p.table: p.severity for p in problems if p.kind == "empty_table"}
    assert empty == {"deals": "error", "deal_history": "warning", "emails": "warning"}


def test_zero_byte_file(tiny_csv_dir):
    (tiny_csv_dir / "quotas.csv").write_bytes(b"")
    code, out = _validate(tiny_csv_dir)
    assert code == 2 and "quotas.csv is an empty file" in out


def test_wrong_file_format(tiny_csv_dir):
    (tiny_csv_dir / "deals.csv").rename(tiny_csv_dir / "deals.parquet")
    code, out = _validate(tiny_csv_dir)
    assert code == 2 and "not a readable Parquet file" in out


def test_unsupported_extension_is_named(tiny_csv_dir):
    (tiny_csv_dir / "reps.csv").rename(tiny_csv_dir / "reps.xlsx")
    code, out = _validate(tiny_csv_dir)
    assert code == 2 and "reps.xlsx" in out and "missing_table" in out


def test_unreadable_encoding(tiny_csv_dir):
    path = tiny_csv_dir / "accounts.csv"
    path.write_bytes(path.read_bytes().replace(b"retail", b"r\xe9tail"))
    code, out = _validate(tiny_csv_dir)
    assert code == 2 and "not UTF-8" in out and "byte 0xe9 at line 2" in out


def test_sql_source_unreachable():
    with pytest.raises(SourceError, match="unreachable"):
        load_tables("postgresql://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["validate", "postgresql://nobody@127.0.0.1:1/none"])
    assert result.exit_code == 2 and "unreachable" in result.output


def test_missing_folder():
    result = runner.invoke(app, ["validate", "/no/such/folder"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_every_problem_is_reported_not_just_the_first(tiny_csv_dir):
    def edit(f):
        f.loc[0, "stage"] = "won?"
        f.loc[1, "rep_id"] = "NOPE"
        f.loc[2, "amount"] = "x"

    _edit_csv(tiny_csv_dir, "deals", edit)
    with pytest.raises(SchemaError) as info:
        load_tables(tiny_csv_dir)
    kinds = {p.kind for p in info.value.problems}
    assert {"bad_enum", "dangling_reference", "not_numeric"} <= kinds


def test_rows_are_never_dropped(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.loc.__setitem__((0, "amount"), "12k"))
    tables, _ = check_source(tiny_csv_dir)
    assert len(tables.deals) == 3  # kept, with the bad cell reported


def test_extra_columns_are_kept(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.insert(3, "lead_source", "web"))
    tables = load_tables(tiny_csv_dir)
    assert tables.deals.columns[-1] == "lead_source"


def test_parquet_and_csv_round_trip_identically(tiny, tmp_path):
    write_tables(tiny, tmp_path / "p", format="parquet")
    write_tables(tiny, tmp_path / "c", format="csv")
    a, b = load_tables(tmp_path / "p"), load_tables(tmp_path / "c")
    for name, frame in a.items():
        pd.testing.assert_frame_equal(frame, getattr(b, name), check_dtype=True)
    assert a.extracted_at == b.extracted_at == tiny.extracted_at


def test_sqlite_source(tiny, tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    write_tables_sql(tiny, url)
    tables = load_tables(url, as_of=tiny.extracted_at)
    assert len(tables.deals) == 3 and tables.deals["created_at"].dtype == "datetime64[ns]"
    con = sqlite3.connect(tmp_path / "crm.db")
    con.execute("UPDATE deals SET outcome = 'maybe' WHERE deal_id = 'D1'")
    con.commit()
    con.close()
    _, problems = check_source(url)
    assert any(p.kind == "bad_enum" and p.row == "row 1 (deal_id=D1)" for p in problems)


def _history_rows(folder: Path, rows: list[dict]) -> None:
    path = folder / "deal_history.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).fillna("").to_csv(path, index=False)


def test_owner_and_custom_field_history_pass(tiny_csv_dir):
    _edit_csv(tiny_csv_dir, "deals", lambda f: f.insert(len(f.columns), "priority", "high"))
    _history_rows(
        tiny_csv_dir,
        [
            {"deal_id": "D2", "changed_at": "2024-03-01", "field": "rep_id"}
            | {"old_value": "R2", "new_value": "R1"},
            {"deal_id": "D3", "changed_at": "2024-05-10", "field": "priority"}
            | {"old_value": "low", "new_value": "high"},
            {"deal_id": "D1", "changed_at": "2024-01-11", "field": "priority"}
            | {"old_value": "low", "new_value": ""},  # a custom field may be cleared
        ],
    )
    code, out = _validate(tiny_csv_dir)
    assert code == 0, out


def test_history_fields_and_owners_are_checked(tiny_csv_dir):
    _history_rows(
        tiny_csv_dir,
        [
            {"deal_id": "D2", "changed_at": "2024-03-01", "field": "rep_id"}
            | {"old_value": "GHOST", "new_value": "R1"},
            {"deal_id": "D3", "changed_at": "2024-05-10", "field": "priority"}
            | {"old_value": "low", "new_value": "high"},
            {"deal_id": "D3", "changed_at": "2024-05-11", "field": "stage"}
            | {"old_value": "proposal", "new_value": ""},
        ],
    )
    _, problems = check_source(tiny_csv_dir)
    found = {(p.table, p.column, p.kind): p for p in problems}
    owner = found[("deal_history", "old_value", "dangling_reference")]
    assert "row 6" in owner.row and "'GHOST' is not a rep_id in reps" in owner.message
    field = found[("deal_history", "field", "bad_enum")]
    assert "'priority' is neither one of stage, amount, expected_close_at, rep_id" in field.message
    assert (
        "required for field 'stage'"
        in found[("deal_history", "new_value", "missing_value")].message
    )
    assert _validate(tiny_csv_dir)[0] == 2


def _rep_history(folder: Path, rows: list[dict]) -> None:
    """R1 moved from M1's team east to a new manager M2's team west on 2024-02-01."""

    def edit(reps):
        reps.loc[len(reps)] = {
            **reps.iloc[0].to_dict(),
            "rep_id": "M2",
            "team": "west",
            "hire_date": "2023-06-01",
        }
        reps.loc[reps["rep_id"] == "R1", ["manager_id", "team"]] = ["M2", "west"]

    _edit_csv(folder, "reps", edit)
    path = folder / "rep_history.csv"
    pd.DataFrame(rows, columns=["rep_id", "changed_at", "field", "old_value", "new_value"]).to_csv(
        path, index=False
    )


MOVE = [
    {"rep_id": "R1", "changed_at": "2024-02-01", "field": "manager_id"}
    | {"old_value": "M1", "new_value": "M2"},
    {"rep_id": "R1", "changed_at": "2024-02-01", "field": "team"}
    | {"old_value": "east", "new_value": "west"},
]


def test_rep_history_is_optional_and_silent(tiny_csv_dir, tmp_path):
    (tiny_csv_dir / "rep_history.csv").unlink()
    tables, problems = check_source(tiny_csv_dir)
    assert not [p for p in problems if p.table == "rep_history"]
    assert list(tables.rep_history.columns) == [
        "rep_id",
        "changed_at",
        "field",
        "old_value",
        "new_value",
    ]
    assert len(tables.rep_history) == 0 and tables.rep_history["changed_at"].dtype.kind == "M"
    # a database without the table reads the same way
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    write_tables_sql(tables, url)
    con = sqlite3.connect(tmp_path / "crm.db")
    con.execute("DROP TABLE rep_history")
    con.commit()
    con.close()
    tables, problems = check_source(url, as_of=tables.extracted_at)
    assert len(tables.rep_history) == 0
    assert not [p for p in problems if p.table == "rep_history"]


def test_rep_history_passes_and_round_trips(tiny_csv_dir, tmp_path):
    _rep_history(tiny_csv_dir, MOVE)
    code, out = _validate(tiny_csv_dir)
    assert code == 0, out
    tables = load_tables(tiny_csv_dir)
    assert tables.rep_history["field"].tolist() == ["manager_id", "team"]
    write_tables(tables, tmp_path / "p", format="parquet")
    pd.testing.assert_frame_equal(load_tables(tmp_path / "p").rep_history, tables.rep_history)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    write_tables_sql(tables, url)
    pd.testing.assert_frame_equal(
        load_tables(url, as_of=tables.extracted_at).rep_history, tables.rep_history
    )


def test_rep_history_references_dates_and_chain_are_checked(tiny_csv_dir):
    _rep_history(
        tiny_csv_dir,
        [
            *MOVE,
            {"rep_id": "R2", "changed_at": "2023-01-15", "field": "manager_id"}
            | {"old_value": "M1", "new_value": "GHOST"},  # before the hire, unknown manager
            {"rep_id": "R2", "changed_at": "2024-05-20", "field": "team"}
            | {"old_value": "north", "new_value": "east"},  # after the exit; chain broken
            {"rep_id": "NOPE", "changed_at": "2024-03-01", "field": "manager_id"}
            | {"old_value": "M1", "new_value": "M2"},
            {"rep_id": "R1", "changed_at": "2030-01-01", "field": "title"}
            | {"old_value": "", "new_value": "x"},
        ],
    )
    _, problems = check_source(tiny_csv_dir)
    found = {}
    for p in problems:
        if p.table == "rep_history":
            found.setdefault((p.column, p.kind), []).append(p)
    assert (
        "'GHOST' is not a rep_id in reps" in found[("new_value", "dangling_reference")][0].message
    )
    assert "'NOPE' is not a rep_id" in found[("rep_id", "dangling_reference")][0].message
    dates = [p.message for p in found[("changed_at", "date_order")]]
    assert any("before the rep's hire_date" in m for m in dates)
    assert any("after the rep's exit_date" in m for m in dates)
    assert "after the data's as-of" in found[("changed_at", "after_as_of")][0].message
    assert "is not one of manager_id, team" in found[("field", "bad_enum")][0].message
    chain = found[("new_value", "inconsistent_history")]
    assert all(p.severity == "warning" for p in chain)
    # R2's last manager change says GHOST while reps says M1
    assert any("reps holds 'M1'" in p.message for p in chain)
    assert _validate(tiny_csv_dir)[0] == 2


def test_rep_history_broken_chain_is_a_warning(tiny_csv_dir):
    _rep_history(
        tiny_csv_dir,
        [
            {"rep_id": "R1", "changed_at": "2023-06-01", "field": "manager_id"}
            | {"old_value": "M1", "new_value": "M1"},
            MOVE[0] | {"old_value": "M2"},  # the earlier row left R1 with M1, not M2
        ],
    )
    _, problems = check_source(tiny_csv_dir)
    (p,) = [p for p in problems if p.table == "rep_history"]
    assert (p.column, p.kind, p.severity) == ("old_value", "inconsistent_history", "warning")
    assert "differs from the new_value 'M1'" in p.message and "row 2" in p.row
    assert _validate(tiny_csv_dir)[0] == 0


def test_overlapping_quota_periods_are_named(tiny_csv_dir):
    def overlap(frame: pd.DataFrame) -> None:
        first = frame.iloc[[0]].copy()
        start = pd.Timestamp(first["period_start"].iat[0]) + pd.Timedelta(days=10)
        first["period_start"] = str(start.date())
        frame.loc[len(frame)] = first.iloc[0]

    _edit_csv(tiny_csv_dir, "quotas", overlap)
    code, out = _validate(tiny_csv_dir)
    assert code != 0
    assert "overlapping_periods" in out and "quotas" in out


@pytest.mark.parametrize("dtype", [object, "str"])
def test_blank_text_is_what_stripping_leaves_empty(dtype):
    """Blank means missing, or nothing but whitespace once stripped, decided without
    stripping (long email bodies): the same answer as ``str.strip() == ""`` on every kind
    of space and near-space."""
    from spm_ml.data.parse import _is_blank

    values = ["", " ", "\t\n", "\u00a0", "a ", None, "\u2003", " x", "\x1c", "\u200b", "ok"]
    raw = pd.Series(values, dtype=dtype)
    stripped = raw.isna() | raw.astype("str").str.strip().eq("").fillna(False)
    assert list(_is_blank(raw)) == list(stripped)
    assert list(_is_blank(raw)) == [
        True,
        True,
        True,
        True,
        False,
        True,
        True,
        False,
        True,
        False,
        False,
    ]
