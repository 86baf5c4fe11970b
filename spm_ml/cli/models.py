"""``spm-ml train deal-win`` and ``spm-ml promote``: the model lifecycle from the shell."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from spm_ml import settings
from spm_ml.cli._common import console, exits_on_error, progress_bar
from spm_ml.features.rep_snapshots import DEFAULT_ATTRITION_HORIZON_DAYS
from spm_ml.features.snapshots import DEFAULT_HORIZON_DAYS

WorkdirOption = Annotated[
    Path | None,
    typer.Option(help="Work folder holding the MLflow store (default ./spm-ml-quickstart)."),
]


TrainDataOption = Annotated[
    str | None,
    typer.Option(help="Organisation to train on: folder, SQL URL or ADAPTER:PATH."),
]

TimeBudgetOption = Annotated[
    float | None,
    typer.Option(
        min=1,
        help="--table: seconds the whole run may take, evaluation included (default 120).",
    ),
]


def _table_config(
    target, positive, negative, sep, time_col, id_col, keep_col, drop_col, learner, seed
):
    """A flat export's training configuration from the command's options."""
    from spm_ml.training.tabular import TabularTrainConfig

    return TabularTrainConfig(
        target=target,
        positive=positive,
        negatives=tuple(negative or ()),
        sep=sep,
        time_col=time_col,
        id_cols=tuple(id_col or ()),
        keep_cols=tuple(keep_col or ()),
        drop_cols=tuple(drop_col or ()),
        learner=learner,
        seed=seed,
    )


def _train_from_table(
    table: Path,
    config,
    *,
    model_out: Path,
    workdir: Path | None,
    metrics_json: Path | None,
    register: str | None,
    time_budget: float | None = None,
) -> None:
    """A flat export's run: an explicit work folder wins; else the user's tracking server;
    else a per-user folder, never the current one.  ``time_budget`` (``--time-budget``)
    replaces the configuration's default."""
    from dataclasses import replace

    from spm_ml.cli.tabular import train_table

    if time_budget is not None:
        config = replace(config, time_budget=float(time_budget))

    explicit = workdir is not None or bool(os.environ.get("SPM_ML_WORKDIR"))
    train_table(
        table,
        config,
        model_out=model_out,
        workdir=settings.table_workdir(workdir),
        metrics_json=metrics_json,
        register=register,
        tracking_uri=None if explicit else settings.users_tracking_uri(),
    )


@exits_on_error
def train_attrition_command(
    data: TrainDataOption = None,
    horizon_days: Annotated[
        int,
        typer.Option(min=1, help="Label: leaves voluntarily within this many days."),
    ] = DEFAULT_ATTRITION_HORIZON_DAYS,
    table: Annotated[
        Path | None,
        typer.Option(help="Instead of --data: one flat export of employees (CSV/Parquet)."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="The outcome column (e.g. Attrition).")] = None,
    positive: Annotated[
        str | None, typer.Option(help="The outcome value meaning left (e.g. Yes).")
    ] = None,
    negative: Annotated[
        list[str] | None,
        typer.Option(help="A staying value; rows with other values are left out."),
    ] = None,
    sep: Annotated[str, typer.Option(help="Column separator.")] = ",",
    id_col: Annotated[
        list[str] | None, typer.Option(help="An identifier column (never a feature).")
    ] = None,
    keep_col: Annotated[
        list[str] | None,
        typer.Option(
            help="Use this column even if it looks like a leak or an id (never a "
            "protected attribute)."
        ),
    ] = None,
    drop_col: Annotated[list[str] | None, typer.Option(help="Never use this column.")] = None,
    learner: Annotated[str, typer.Option(help="auto (pick by inner CV), gbm or logistic.")] = (
        "auto"
    ),
    model_out: Annotated[
        Path | None, typer.Option(help="Folder for the MLflow pyfunc model.")
    ] = None,
    register: Annotated[
        str | None,
        typer.Option(help="Also register the model under this name in the MLflow registry."),
    ] = None,
    workdir: WorkdirOption = None,
    metrics_json: Annotated[
        Path | None, typer.Option(help="Write held-out metrics of model and references here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    time_budget: TimeBudgetOption = None,
) -> None:
    """Train a calibrated attrition model on an organisation: the probability that an AE
    leaves voluntarily within --horizon-days (it becomes the challenger); or, with --table, on
    a flat export of employees, saved to --model-out as an MLflow pyfunc whose predict returns
    a 'probability' column.  Protected attributes (age, gender, marital status, race,
    religion...) are never features, even where the export has them."""
    from dataclasses import replace

    from spm_ml.errors import SpmMlError

    table_only = {
        "--target": target,
        "--positive": positive,
        "--negative": negative,
        "--id-col": id_col,
        "--keep-col": keep_col,
        "--drop-col": drop_col,
        "--model-out": model_out,
        "--register": register,
        "--time-budget": time_budget,
    }
    if table is None:
        given = [o for o, v in table_only.items() if v]
        if given:
            raise SpmMlError(f"{', '.join(given)} only apply with --table FILE")
        from spm_ml.features.rep_snapshots import AttritionLabel
        from spm_ml.training.attrition import AttritionTrainConfig, train_attrition

        config = AttritionTrainConfig(seed=seed, label=AttritionLabel(horizon_days=horizon_days))
        _train_on_organisation(
            "attrition",
            train_attrition,
            config,
            data,
            workdir,
            metrics_json,
            headings=("reps", "leave rate"),
        )
        return
    if data is not None:
        raise SpmMlError("--data and --table are alternatives: pass one of them")
    needed = [o for o in ("--target", "--positive", "--model-out") if table_only[o] is None]
    if needed:
        raise SpmMlError(f"--table needs {', '.join(needed)}")
    _train_from_table(
        table,
        replace(
            _table_config(
                target, positive, negative, sep, None, id_col, keep_col, drop_col, learner, seed
            ),
            family="attrition",
            exclude_protected=True,
        ),
        model_out=model_out,
        workdir=workdir,
        metrics_json=metrics_json,
        register=register,
        time_budget=time_budget,
    )


@exits_on_error
def train_deal_win_command(
    data: TrainDataOption = None,
    workdir: WorkdirOption = None,
    metrics_json: Annotated[
        Path | None, typer.Option(help="Write held-out metrics of model and references here.")
    ] = None,
    every_days: Annotated[int, typer.Option(help="Snapshot grid spacing in days.")] = 7,
    horizon_days: Annotated[
        int,
        typer.Option(min=1, help="Label: won within this many days of each snapshot."),
    ] = DEFAULT_HORIZON_DAYS,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    custom_field: Annotated[
        list[str] | None,
        typer.Option(
            help="A custom CRM field (extra deals column) to use as a feature; repeatable. "
            "Refused if the leak screen flags it."
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(help="Instead of --data: one flat export of closed deals (CSV/Parquet)."),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="--table: the outcome column (e.g. deal_stage).")
    ] = None,
    positive: Annotated[
        str | None, typer.Option(help="--table: the outcome value meaning won (e.g. Won).")
    ] = None,
    negative: Annotated[
        list[str] | None,
        typer.Option(help="--table: a losing value; rows with other values are left out."),
    ] = None,
    sep: Annotated[str, typer.Option(help="--table: column separator.")] = ",",
    time_col: Annotated[
        str | None,
        typer.Option(help="--table: date column for a time split (else cross-validation)."),
    ] = None,
    id_col: Annotated[
        list[str] | None, typer.Option(help="--table: an identifier column (never a feature).")
    ] = None,
    keep_col: Annotated[
        list[str] | None,
        typer.Option(help="--table: use this column even if it looks like a leak or an id."),
    ] = None,
    drop_col: Annotated[
        list[str] | None, typer.Option(help="--table: never use this column.")
    ] = None,
    learner: Annotated[
        str, typer.Option(help="--table: auto (pick by inner CV), gbm or logistic.")
    ] = "auto",
    model_out: Annotated[
        Path | None, typer.Option(help="--table: folder for the MLflow pyfunc model.")
    ] = None,
    register: Annotated[
        str | None,
        typer.Option(
            help="--table: also register the model under this name in the MLflow registry "
            "(the first version becomes champion, later ones challenger)."
        ),
    ] = None,
    time_budget: TimeBudgetOption = None,
) -> None:
    """Train a calibrated deal-win model on an organisation (it becomes the challenger), or,
    with --table, on any flat export of closed deals (saved to --model-out; the MLflow store
    is --workdir's, $MLFLOW_TRACKING_URI, or a per-user folder: never the current one)."""
    from spm_ml.errors import SpmMlError

    table_only = {
        "--target": target,
        "--positive": positive,
        "--negative": negative,
        "--time-col": time_col,
        "--id-col": id_col,
        "--keep-col": keep_col,
        "--drop-col": drop_col,
        "--model-out": model_out,
        "--register": register,
        "--time-budget": time_budget,
    }
    if table is not None:
        if data is not None:
            raise SpmMlError("--data and --table are alternatives: pass one of them")
        if custom_field:
            raise SpmMlError(
                "--custom-field applies to an organisation (--data); with --table every column "
                "is screened (see --keep-col, --drop-col)"
            )
        needed = [o for o in ("--target", "--positive", "--model-out") if table_only[o] is None]
        if needed:
            raise SpmMlError(f"--table needs {', '.join(needed)}")
        _train_from_table(
            table,
            _table_config(
                target, positive, negative, sep, time_col, id_col, keep_col, drop_col, learner, seed
            ),
            model_out=model_out,
            workdir=workdir,
            metrics_json=metrics_json,
            register=register,
            time_budget=time_budget,
        )
        return
    given = [o for o, v in table_only.items() if v]
    if given:
        raise SpmMlError(f"{', '.join(given)} only apply with --table FILE")
    from spm_ml.features.deals import DealFeatureConfig
    from spm_ml.features.snapshots import LabelDefinition
    from spm_ml.training.deal_win import DealWinTrainConfig, train_deal_win

    config = DealWinTrainConfig(
        snapshot_every_days=every_days,
        seed=seed,
        label=LabelDefinition(horizon_days=horizon_days),
        features=DealFeatureConfig(custom_fields=tuple(custom_field or ())),
    )

    def screen(tables) -> None:
        if config.features.custom_fields:
            from spm_ml.features.custom_fields import screen_custom_fields

            # refuse a leaking field now, not after scoring every email
            screen_custom_fields(tables, config.features.custom_fields)

    _train_on_organisation(
        "deal-win", train_deal_win, config, data, workdir, metrics_json, check=screen
    )


def _train_on_organisation(
    family: str,
    train,
    config,
    data: str | None,
    workdir: Path | None,
    metrics_json: Path | None,
    *,
    check=None,
    headings: tuple[str, str] = ("deals", "win rate"),
) -> None:
    """An organisation's run of any family: load --data (default: the work folder's
    organisation), train (``train(tables, workdir=, config=, ...)``), print the held-out
    metrics and slices, write --metrics-json.  ``check(tables)`` refuses bad options early;
    ``headings`` name the slice table's entity count and positive rate."""
    from spm_ml.data.io import load_tables
    from spm_ml.training.family import write_metrics_json

    work = settings.workdir(workdir)
    source = data or settings.data_source(work)
    tables = load_tables(source)
    if check is not None:
        check(tables)
    with progress_bar() as progress:
        run = train(
            tables, workdir=work, config=config, data_description=str(source), progress=progress
        )
    print_training_summary(run.metrics)
    print_slices(run.slices, headings, tuple(k for k in ("monte_carlo",) if k in run.metrics))
    print_family_report(run.metrics)
    if metrics_json is not None:
        write_metrics_json(run.metrics, metrics_json)
    console.print(
        f"MLflow run {run.run_id}; registered {family} version {run.model_version} "
        f"as @{run.alias} ({run.seconds:.1f} s)"
    )


@exits_on_error
def train_quota_risk_command(
    data: TrainDataOption = None,
    workdir: WorkdirOption = None,
    metrics_json: Annotated[
        Path | None,
        typer.Option(help="Write held-out metrics of model, Monte Carlo and references here."),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(min=0.01, help="Label: final attainment below this share of quota."),
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train a calibrated quota-risk model (P(a rep ends the period below quota)) on an
    organisation, judged beside the deal-level Monte Carlo and a stage-weighted pipeline
    reference on the same held-out periods; it becomes the challenger."""
    from spm_ml.features.quota import QuotaLabel
    from spm_ml.training.quota_risk import QuotaRiskTrainConfig, train_quota_risk

    config = QuotaRiskTrainConfig(seed=seed, label=QuotaLabel(threshold=threshold))
    _train_on_organisation(
        "quota-risk",
        train_quota_risk,
        config,
        data,
        workdir,
        metrics_json,
        headings=("reps", "miss rate"),
    )


def print_training_summary(document: dict) -> None:
    """Held-out metrics of the model and its references as one table, CIs beside."""
    from rich.table import Table

    table = Table(title=f"held-out metrics ({document['split']} split)")
    table.add_column("model", no_wrap=True)
    for metric in ("roc_auc", "pr_auc", "brier", "log_loss", "ece"):
        table.add_column(metric, justify="right")
    estimators = {  # the model and any other estimator judged beside it (a metrics block)
        k: v
        for k, v in document.items()
        if k == "model" or (isinstance(v, dict) and isinstance(v.get("roc_auc"), float | int))
    }
    rows = {**estimators, **document["references"]}
    for name, metrics in rows.items():
        cells = []
        for metric in ("roc_auc", "pr_auc", "brier", "log_loss", "ece"):
            value = metrics.get(metric)
            ci = metrics.get("ci95", {}).get(metric)
            text = "n/a" if value is None else f"{value:.4f}"
            if ci:
                text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            cells.append(text)
        table.add_row(name, *cells)
    console.print(table)
    from spm_ml.models.metrics import INTERVAL_METHOD

    console.print(f"[dim]{INTERVAL_METHOD}[/]")
    m = document["model"]
    if "cv" in document:
        cv = document["cv"]
        console.print(
            f"{cv['folds']}-fold CV over {cv['rows']:,} rows, {cv['repeats']} repeat(s): every "
            f"row scored out of fold once per repeat (training folds of about {m['n_train']:,} "
            "rows); metrics averaged over repeats"
        )
    else:
        console.print(f"train rows {m['n_train']:,}, test rows {m['n_test']:,}")
    if "label" in document and "horizon_days" in document["label"]:
        c = document["censoring"]
        population = c.get("population", "every deal open on the test dates")
        console.print(
            f"label: {document['label']['definition']}; test = {population}; left out of "
            f"training: {c['censored_at_extraction']:,} snapshots still open at extraction, "
            f"{c['unknown_at_training_date']:,} not yet known at the training date; "
            f"{c['after_observable_end']:,} too recent to judge"
        )
    elif "label" in document:
        console.print(f"label: {document['label']['definition']}")
    sufficiency = document.get("data_sufficiency")
    if sufficiency and sufficiency["thin"]:
        console.print(f"[yellow]warning:[/] {sufficiency['message']}")


def print_slices(
    records: list[dict],
    headings: tuple[str, str] = ("deals", "win rate"),
    alternatives: tuple[str, ...] = (),
) -> None:
    """ROC AUC per slice (segment, size band, stage; fraction of the period elapsed...) for
    the model, the logistic reference and any other estimator judged (``alternatives``: the
    Monte Carlo), and the model's ECE; ``headings`` name the entity count and the positive
    rate columns."""
    from rich.table import Table

    estimators = {"model": "model AUC", "logistic_regression": "LR AUC"}
    if "monte_carlo" in alternatives:
        estimators["monte_carlo"] = "MC AUC"
    table = Table(title="held-out metrics per slice")
    columns = ("slice", "value", *headings, *estimators.values(), "model ECE")
    for column in columns:
        text = column in ("slice", "value")
        table.add_column(column, justify="left" if text else "right", no_wrap=text)

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    for r in records:
        table.add_row(
            r["slice"],
            r["value"],
            f"{r['n_deals']:,}",
            f"{r['win_rate']:.2f}",
            *(number(r.get(f"{name}_roc_auc")) for name in estimators),
            number(r.get("model_ece")),
        )
    console.print(table)


def print_family_report(document: dict) -> None:
    """A family's own figures: quota risk's serving choice, interval and lead time; the
    attrition family's top performers and lead time."""
    if "monte_carlo_interval" in document:
        print_quota_report(document)
        return
    top, lead = document.get("top_performers"), document.get("lead_time_days")
    if not top or not lead:
        return

    def number(value: float | None, form: str = ".3f") -> str:
        return "n/a" if value is None else format(value, form)

    auc, precision = top["roc_auc"], top["precision_at_10"]
    console.print(
        f"top performers ({top['rows']:,} test snapshots, {top['positives']} positive): ROC AUC "
        f"model {number(auc.get('model'))}, LR {number(auc.get('logistic_regression'))}; "
        f"precision at 10 model {number(precision.get('model'))}, LR "
        f"{number(precision.get('logistic_regression'))}, random {number(precision['base_rate'])}"
    )
    console.print(
        f"lead time: {lead['warned']} of {lead['leavers']} voluntary leavers warned, median "
        f"{number(lead['median'], '.0f')} days before the exit (quartiles "
        f"{number(lead['q1'], '.0f')}-{number(lead['q3'], '.0f')}); {lead['rule']}"
    )


def print_quota_report(document: dict) -> None:
    """Which estimator serves quota risk and why, the Monte Carlo interval, the lead time."""
    choice, interval, lead = (
        document["serving_estimator"],
        document["monte_carlo_interval"],
        document["lead_time_days"],
    )
    losses = ", ".join(f"{k} {v:.4f}" for k, v in choice["valid_log_loss"].items())
    console.print(f"serves: {choice['choice']} ({choice['rule']}: {losses})")
    console.print(
        f"Monte Carlo {interval['nominal']:.0%} attainment interval: "
        f"{interval['coverage']:.0%} of held-out periods' final attainment inside it"
    )
    if lead["median"] is not None:
        console.print(
            f"lead time: {lead['warned']} of {lead['missed']} held-out misses warned, median "
            f"{lead['median']:.0f} days before the period's end (quartiles {lead['q1']:.0f}-"
            f"{lead['q3']:.0f}; warning at P(miss) >= {lead['threshold']})"
        )


@exits_on_error
def promote_command(
    family: Annotated[str, typer.Argument(help="Model family, e.g. deal-win.")],
    data: Annotated[
        str | None, typer.Option(help="Evaluation data (default: the work folder's data).")
    ] = None,
    workdir: WorkdirOption = None,
    by: Annotated[str | None, typer.Option(help="Who decides (default: current user).")] = None,
    note: Annotated[str, typer.Option(help="Why, in your words; stored with the decision.")] = "",
) -> None:
    """Make the challenger the champion, only if it beats the champion on the same data."""
    from spm_ml import registry
    from spm_ml.data.io import load_tables
    from spm_ml.training.families import family_spec
    from spm_ml.training.promotion import promote

    family_spec(family)  # a clear error for an unknown family, before loading any data
    work = settings.workdir(workdir)
    registry.use_local_store(work)
    tables = load_tables(data or settings.data_source(work))
    decision = promote(family, tables, workdir=work, by=by, note=note)
    verdict = "[green]promoted[/]" if decision.promoted else "[yellow]kept the champion[/]"
    console.print(f"{verdict}: {decision.reason}")
    if not decision.promoted:
        raise typer.Exit(1)
