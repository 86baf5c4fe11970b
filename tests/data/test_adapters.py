"""The Maven CRM and IBM HR adapters on the real public files in ``../shared/data``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_ml.data.adapters import (
    ADAPTERS,
    NON_FEATURE_COLUMNS,
    empty_table,
    load_ibm_hr,
    load_maven_crm,
    read_ibm_hr_frame,
)
from spm_ml.data.schema import TABLES
from spm_ml.errors import SchemaError, SourceError

pytestmark = pytest.mark.shared_data

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MAVEN = DATA / "maven_crm"
IBM = DATA / "ibm_hr_attrition" / "WA_Fn-UseC_-HR-Employee-Attrition.csv"

if not (MAVEN.is_dir() and IBM.is_file()):
    pytest.skip(
        f"real datasets not found under {DATA} (expected ../shared/data beside the project "
        "root, see shared/data/SOURCES.md); adapter tests need them",
        allow_module_level=True,
    )

DTYPES = {
    "id": "str",
    "string": "str",
    "enum": "str",
    "datetime": "datetime64[ns]",
    "float": "float64",
    "int": "Int64",
}


@pytest.fixture(scope="module")
def maven():
    return load_maven_crm(MAVEN)


@pytest.fixture(scope="module")
def maven_raw():
    return pd.read_csv(MAVEN / "sales_pipeline.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def ibm_sales():
    return load_ibm_hr(IBM)


def assert_contract_shape(tables):
    for name, frame in tables.items():
        schema = TABLES[name]
        assert list(frame.columns[: len(schema.columns)]) == schema.column_names, name
        for column in schema.columns:
            assert frame[column.name].dtype == DTYPES[column.kind], (name, column.name)


def replay(history: pd.DataFrame) -> pd.DataFrame:
    """Final value of each (deal, field) by applying the changes in time order."""
    ordered = history.sort_values("changed_at", kind="stable")
    return ordered.groupby(["deal_id", "field"])["new_value"].last().unstack()


# --- Maven CRM ---------------------------------------------------------------------------


def test_maven_counts(maven):
    assert len(maven.deals) == 8800
    agents = maven.reps[maven.reps["role"] == "sales_agent"]
    assert len(agents) == 35
    assert (maven.reps["role"] == "manager").sum() == 6
    real = maven.accounts[~maven.accounts["is_placeholder"]]
    assert len(real) == 85
    assert maven.accounts.loc[maven.accounts["is_placeholder"], "account_id"].tolist() == [
        "unknown"
    ]
    assert maven.extracted_at == pd.Timestamp("2017-12-31")


def test_maven_keeps_every_deal(maven, maven_raw):
    assert sorted(maven.deals["deal_id"]) == sorted(maven_raw["opportunity_id"])
    # open deals without an account go to the placeholder, counted and flagged
    blank = (maven_raw["account"] == "").sum()
    assert blank == 1425
    assert (maven.deals["account_id"] == "unknown").sum() == blank
    assert maven.deals["account_imputed"].sum() == blank


def test_maven_contract_shape(maven):
    assert_contract_shape(maven)
    for name in ("activities", "emails", "quotas", "compensation"):
        assert getattr(maven, name).empty


def test_maven_stages_and_win_rate(maven):
    deals = maven.deals
    assert deals["stage"].value_counts().to_dict() == {
        "closed_won": 4238,
        "closed_lost": 2473,
        "discovery": 1589,
        "prospecting": 500,
    }
    closed = deals["outcome"].notna()
    assert (closed == deals["closed_at"].notna()).all()
    win_rate = (deals.loc[closed, "outcome"] == "won").mean()
    assert win_rate == pytest.approx(0.63, abs=0.01)


def test_maven_foreign_keys(maven):
    assert maven.deals["rep_id"].isin(maven.reps["rep_id"]).all()
    assert maven.deals["account_id"].isin(maven.accounts["account_id"]).all()
    managers = maven.reps["manager_id"].dropna()
    assert managers.isin(maven.reps.loc[maven.reps["role"] == "manager", "rep_id"]).all()
    assert maven.deal_history["deal_id"].isin(maven.deals["deal_id"]).all()
    assert maven.reps["rep_id"].is_unique and maven.deals["deal_id"].is_unique


def test_maven_products_normalised(maven):
    catalogue = pd.read_csv(MAVEN / "products.csv")
    assert set(maven.deals["product"]) <= set(catalogue["product"])
    assert "GTXPro" not in set(maven.deals["product"])
    assert (maven.deals["product"] == "GTX Pro").sum() == 1480


def test_maven_amounts_do_not_reveal_the_outcome(maven):
    deals = maven.deals
    assert (deals["amount"] > 0).all()
    not_won = deals["outcome"] != "won"
    assert (deals["amount_imputed"] == not_won).all()
    assert (deals.loc[not_won, "amount"] == deals.loc[not_won, "sales_price"]).all()
    # the history starts every deal at its list price, whatever the outcome
    first = maven.deal_history[maven.deal_history["field"] == "amount"].drop_duplicates("deal_id")
    listed = deals.set_index("deal_id")["sales_price"]
    initial = first.set_index("deal_id")["new_value"].astype(float)
    assert (initial == listed[initial.index]).all()


def test_maven_dates(maven):
    deals = maven.deals
    prospecting = deals["stage"] == "prospecting"
    assert (deals["created_at_imputed"] == prospecting).all()
    assert (deals.loc[prospecting, "created_at"] == maven.extracted_at).all()
    assert (deals["expected_close_at"] - deals["created_at"]).nunique() == 1
    assert (
        deals["closed_at"].dropna() >= deals.loc[deals["closed_at"].notna(), "created_at"]
    ).all()
    assert deals["created_at"].max() <= maven.extracted_at
    reps = maven.reps
    assert reps["hire_date_imputed"].all()
    first_deal = deals.groupby("rep_id")["created_at"].min()
    hired = reps.set_index("rep_id")["hire_date"]
    assert (hired[first_deal.index] < first_deal).all()


def test_maven_history_replays_to_final_state(maven):
    final = replay(maven.deal_history)
    deals = maven.deals.set_index("deal_id")
    assert len(final) == len(deals)
    assert (final["stage"] == deals["stage"][final.index]).all()
    assert np.allclose(final["amount"].astype(float), deals["amount"][final.index])
    expected = deals["expected_close_at"].dt.strftime("%Y-%m-%d")[final.index]
    assert (final["expected_close_at"] == expected).all()
    initial = maven.deal_history.drop_duplicates(["deal_id", "field"])
    assert initial["old_value"].isna().all()
    assert (initial["changed_at"] == deals["created_at"][initial["deal_id"]].to_numpy()).all()


def test_maven_bad_date_names_file_line_and_column(tmp_path):
    folder = tmp_path / "maven"
    shutil.copytree(MAVEN, folder)
    path = folder / "sales_pipeline.csv"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace("10/25/2016", "2016-25-10", 1)  # line 5 of the file
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as err:
        load_maven_crm(folder)
    message = str(err.value)
    assert "sales_pipeline.csv" in message and "line 5" in message and "engage_date" in message
    assert [(p.row.split()[1], p.column) for p in err.value.problems] == [("5", "engage_date")]


def test_maven_unknown_product_and_stage_are_reported(tmp_path):
    folder = tmp_path / "maven"
    shutil.copytree(MAVEN, folder)
    path = folder / "sales_pipeline.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("GTXPro", "GTX Ultra")  # line 3
    lines[3] = lines[3].replace(",Won,", ",Maybe,")  # line 4
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as err:
        load_maven_crm(folder)
    found = {(p.row.split()[1], p.column, p.kind) for p in err.value.problems}
    assert found == {("3", "product", "unknown_product"), ("4", "deal_stage", "bad_enum")}


def test_maven_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError):
        load_maven_crm(tmp_path / "nowhere")


# --- IBM HR -------------------------------------------------------------------------------


def test_ibm_frame_handles_the_bom():
    frame = read_ibm_hr_frame(IBM)
    assert frame.columns[0] == "Age"
    assert frame.shape == (1470, 35)
    assert frame["Age"].dtype == "int64"


def test_ibm_sales_reps(ibm_sales):
    reps = ibm_sales.reps
    assert len(reps) == 446
    assert_contract_shape(ibm_sales)
    assert set(reps["team"]) == {"Sales"}
    assert set(reps["role"]) == {"Sales Executive", "Sales Representative", "Manager"}
    assert reps["rep_id"].is_unique
    assert reps["manager_id"].isna().all()
    assert ibm_sales.extracted_at == pd.Timestamp("2024-01-01")
    for name, frame in ibm_sales.items():
        assert name == "reps" or frame.empty


def test_ibm_attrition_kept_and_dated(ibm_sales):
    reps = ibm_sales.reps
    raw = read_ibm_hr_frame(IBM)
    raw = raw[raw["Department"] == "Sales"].reset_index(drop=True)
    assert (reps["Attrition"] == raw["Attrition"]).all()
    left = reps["Attrition"] == "Yes"
    assert left.sum() == 92
    assert (reps.loc[left, "exit_date"] == pd.Timestamp("2024-01-01")).all()
    assert reps.loc[~left, "exit_date"].isna().all()
    assert reps["exit_reason"].isna().all()
    tenure = reps["exit_date"].fillna(ibm_sales.extracted_at).dt.year - reps["hire_date"].dt.year
    assert (tenure == reps["YearsAtCompany"]).all()
    assert reps["MonthlyIncome"].dtype == "int64"
    assert "EmployeeNumber" not in reps.columns  # it is rep_id


def test_ibm_all_departments_and_options():
    tables = load_ibm_hr(IBM.parent, department=None, as_of="2020-06-30", exit_reason="voluntary")
    reps = tables.reps
    assert len(reps) == 1470
    assert (reps["Attrition"] == "Yes").sum() == 237
    assert set(reps["exit_reason"].dropna()) == {"voluntary"}
    assert tables.extracted_at == pd.Timestamp("2020-06-30")
    with pytest.raises(SchemaError, match="Marketing"):
        load_ibm_hr(IBM, department="Marketing")


# --- shared -------------------------------------------------------------------------------


def test_registry_and_non_feature_columns(maven, ibm_sales):
    assert {"maven-crm": load_maven_crm, "ibm-hr": load_ibm_hr} == ADAPTERS
    for adapter, tables in (("maven-crm", maven), ("ibm-hr", ibm_sales)):
        # the loaders carry their list with the tables, for the feature code to honour
        assert tables.non_feature_columns == NON_FEATURE_COLUMNS[adapter]
        for table, columns in NON_FEATURE_COLUMNS[adapter].items():
            assert set(columns) <= set(getattr(tables, table).columns)


def test_maven_custom_fields_are_screened(maven):
    from spm_ml.errors import LeakageError
    from spm_ml.features.custom_fields import screen_custom_fields

    used = screen_custom_fields(maven, ["sales_price", "product_series"])
    assert [(f.name, f.kind, f.tracked) for f in used] == [
        ("sales_price", "numeric", False),
        ("product_series", "category", False),
    ]
    with pytest.raises(LeakageError, match="'amount_imputed': the source's adapter lists it"):
        screen_custom_fields(maven, ["amount_imputed"])
    # the export has no owner history: the deals table's owner is the owner throughout
    assert not (maven.deal_history["field"] == "rep_id").any()


def test_empty_table_has_contract_columns():
    for name, schema in TABLES.items():
        frame = empty_table(name)
        assert frame.empty and list(frame.columns) == schema.column_names


@pytest.mark.parametrize("which", ["maven", "ibm_sales"])
def test_adapters_pass_validation(which, request):
    from spm_ml.data.adapters import NON_EMPTY_TABLES
    from spm_ml.data.validate import validate_tables

    tables = request.getfixturevalue(which)
    non_empty = NON_EMPTY_TABLES.get("ibm-hr" if which == "ibm_sales" else "maven-crm")
    problems = validate_tables(tables, **({"non_empty": non_empty} if non_empty else {}))
    # An adapter leaves tables its export does not have empty: warnings, never errors.
    assert [str(p) for p in problems if p.severity == "error"] == []
    assert {p.kind for p in problems} <= {"empty_table"}


@pytest.mark.parametrize("source", [f"maven-crm:{MAVEN}", f"ibm-hr:{IBM}"])
def test_validate_command_accepts_real_exports(source):
    from typer.testing import CliRunner

    from spm_ml.cli import app

    result = CliRunner().invoke(app, ["validate", source])
    assert result.exit_code == 0, result.output
    assert "meets the data contract" in result.output


def test_maven_loads_through_the_source_string():
    from spm_ml.data.io import load_tables

    tables = load_tables(f"maven-crm:{MAVEN}")
    assert len(tables.deals) == 8800
    assert tables.non_feature_columns == NON_FEATURE_COLUMNS["maven-crm"]
