"""Custom CRM fields: used only when opted in, refused when the leak screen flags them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from planted import value_at, with_tracked_field
from typer.testing import CliRunner

from spm_ml.data.io import load_tables, write_tables
from spm_ml.data.tables import Tables
from spm_ml.data.validate import validate_tables
from spm_ml.errors import LeakageError, SchemaError
from spm_ml.features.custom_fields import screen_custom_fields
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import deal_snapshots


def _opt_in(*names: str) -> DealFeatureConfig:
    return DealFeatureConfig(custom_fields=names, email_sentiment=False)


@pytest.fixture(scope="module")
def org() -> Tables:
    """A simulated org plus custom fields: harmless ones and ones recorded at close."""
    from spm_ml.data.simulate import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_reps=12, months=10, seed=7)).tables
    rng = np.random.default_rng(0)
    deals = tables.deals
    n = len(deals)
    won = (deals["outcome"] == "won").to_numpy()
    closed = deals["outcome"].notna().to_numpy()
    # what a CRM's Probability holds after close: ~100% for won deals, ~0% for lost ones
    probability = np.where(won, 0.9, 0.1) + rng.normal(0, 0.05, n)
    probability[~closed] = rng.uniform(0.1, 0.9, (~closed).sum())
    deals = deals.assign(
        Probability=probability,
        budget_band=pd.array(rng.choice(["<10k", "10-50k", ">50k"], n), dtype="str"),
        partner_led=rng.random(n) < 0.3,
        # filled in when the deal closes, whatever the outcome
        close_notes=pd.array(
            np.where(closed, rng.choice(["price", "timing", "fit"], n), None), dtype="str"
        ),
        internal_flag=rng.random(n) < 0.5,
    )
    return tables.replace(deals=deals, non_feature_columns={"deals": ("internal_flag",)})


@pytest.fixture(scope="module")
def snaps(org) -> pd.DataFrame:
    return deal_snapshots(org, every_days=14)[["deal_id", "as_of"]]


def test_a_probability_like_field_is_refused_naming_it(org, snaps):
    with pytest.raises(LeakageError, match=r"'Probability': .*ROC AUC (0\.9\d\d|1\.000)") as caught:
        deal_features(org, snaps, _opt_in("budget_band", "Probability"))
    assert "budget_band" not in str(caught.value)  # only the refused field is blamed


def test_an_opted_in_harmless_field_is_used(org, snaps):
    features = deal_features(org, snaps, _opt_in("budget_band", "partner_led", "segment"))
    positions = org.deals.set_index("deal_id").index.get_indexer(snaps["deal_id"])
    assert (features["custom_budget_band"] == org.deals["budget_band"].to_numpy()[positions]).all()
    assert features["custom_partner_led"].isin([0.0, 1.0]).all()
    assert set(features["custom_segment"]) <= {"smb", "mid_market", "enterprise"}


def test_fields_not_opted_in_are_not_used(org, snaps):
    features = deal_features(org, snaps, _opt_in("budget_band"))
    assert [c for c in features.columns if c.startswith("custom_")] == ["custom_budget_band"]
    default = deal_features(org, snaps, DealFeatureConfig(email_sentiment=False))
    assert not [c for c in default.columns if c.startswith("custom_")]


def test_a_source_non_feature_column_is_refused(org, snaps):
    with pytest.raises(LeakageError, match="'internal_flag': the source's adapter lists it"):
        deal_features(org, snaps, _opt_in("internal_flag"))


def test_a_field_filled_only_at_close_is_refused(org, snaps):
    with pytest.raises(LeakageError, match=r"'close_notes': filled on 100% of closed deals but 0%"):
        deal_features(org, snaps, _opt_in("close_notes"))


def test_unknown_and_contract_columns_are_schema_errors(org, snaps):
    with pytest.raises(SchemaError, match="'nope' is not a column of deals.*budget_band"):
        deal_features(org, snaps, _opt_in("nope"))
    with pytest.raises(SchemaError, match="'amount' is a contract column"):
        deal_features(org, snaps, _opt_in("amount"))


def test_a_tracked_field_is_read_as_of_the_snapshot(org, snaps):
    tracked, truth = with_tracked_field(org, "priority", ("low", "medium", "high"), seed=3)
    assert validate_tables(tracked) == []
    features = deal_features(tracked, snaps, _opt_in("priority"))
    expected = [
        value_at(truth, d, t) for d, t in zip(snaps["deal_id"], snaps["as_of"], strict=True)
    ]
    assert features["custom_priority"].tolist() == expected
    final = tracked.deals.set_index("deal_id")["priority"].reindex(snaps["deal_id"])
    assert (features["custom_priority"].to_numpy() != final.to_numpy()).mean() > 0.2


def test_a_tracked_field_is_screened_on_its_value_before_close(org, snaps):
    """Probability jumps to ~100/0 at close; recorded in history, its earlier values are fair."""
    at_close = org.deals["Probability"]
    before = org.deals.assign(Probability=np.random.default_rng(1).uniform(0.1, 0.9, len(at_close)))
    closed = org.deals[org.deals["closed_at"].notna()]
    rows = pd.DataFrame(
        {
            "deal_id": closed["deal_id"],
            "changed_at": closed["closed_at"],
            "field": "Probability",
            "old_value": before.loc[closed.index, "Probability"].map(str),
            "new_value": at_close[closed.index].map(str),
        }
    ).astype(org.deal_history.dtypes.to_dict())
    history = pd.concat([org.deal_history, rows], ignore_index=True)
    tracked = org.replace(deal_history=history)
    assert validate_tables(tracked) == []
    (field,) = screen_custom_fields(tracked, ["Probability"])
    assert field.tracked and field.kind == "numeric" and field.auc < 0.6
    features = deal_features(tracked, snaps, _opt_in("Probability"))
    # closed deals: the value before close; deals still open never changed it
    expected = (
        before.set_index("deal_id")["Probability"]
        .where(org.deals.set_index("deal_id")["closed_at"].notna(), at_close.to_numpy())
        .reindex(snaps["deal_id"])
        .to_numpy()
    )
    assert np.allclose(features["custom_Probability"].to_numpy(), expected)


def test_custom_history_values_must_parse_like_the_column(org):
    bad = pd.DataFrame(
        {
            "deal_id": org.deals["deal_id"].iloc[:1],
            "changed_at": org.deals["created_at"].iloc[:1],
            "field": "Probability",
            "old_value": None,
            "new_value": "high",
        }
    ).astype(org.deal_history.dtypes.to_dict())
    unknown = bad.assign(field="not_a_column")
    broken = org.replace(deal_history=pd.concat([org.deal_history, bad, unknown]))
    problems = {(p.column, p.kind): p.message for p in validate_tables(broken)}
    assert (
        "'high' of custom field 'Probability' does not parse"
        in problems[("new_value", "bad_value")]
    )
    assert "'not_a_column' is neither one of" in problems[("field", "bad_enum")]


def test_the_cli_refuses_a_leaking_field_with_exit_2(org, tmp_path):
    from spm_ml.cli import app

    folder = tmp_path / "org"
    write_tables(org, folder, format="csv")
    assert "Probability" in load_tables(folder).deals.columns
    result = CliRunner().invoke(
        app,
        [
            "train",
            "deal-win",
            "--data",
            str(folder),
            "--workdir",
            str(tmp_path / "work"),
            "--custom-field",
            "Probability",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "'Probability'" in result.output and "outcome leak" in result.output
    assert not (tmp_path / "work" / "mlflow.db").exists()  # refused before any training


def test_the_mlproject_entry_point_passes_custom_fields(monkeypatch):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "pipelines" / "train_deal_win.py"
    spec = importlib.util.spec_from_file_location("train_deal_win_entry", path)
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    calls = []
    monkeypatch.setattr(entry, "app", calls.append)
    monkeypatch.setattr(sys, "argv", ["x", "--custom-fields", "segment, lead_source"])
    entry.main()
    monkeypatch.setattr(sys, "argv", ["x"])  # the MLproject default: none
    entry.main()
    with_fields, default = calls
    assert with_fields[-4:] == ["--custom-field", "segment", "--custom-field", "lead_source"]
    assert "--custom-field" not in default
    assert (
        "custom_fields: {type: string, default: none}"
        in (path.parents[1] / "MLproject").read_text()
    )
