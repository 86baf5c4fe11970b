"""``spm-ml train deal-win --table FILE``: the terminal side of training on a flat export."""

from __future__ import annotations

from pathlib import Path

from spm_ml.cli._common import console, err_console, progress_bar


def train_table(
    table: Path,
    config,
    *,
    model_out: Path,
    workdir: Path,
    metrics_json: Path | None,
    register: str | None = None,
) -> None:
    """Read and screen ``table``, print every column decision, train, print the metrics."""
    from spm_ml.cli.models import print_training_summary
    from spm_ml.training.family import write_metrics_json
    from spm_ml.training.tabular import EXPERIMENT, load_tabular, train_tabular

    data = load_tabular(table, config)
    n_pos = int(data.y.sum())
    console.print(
        f"read {data.n_read:,} rows x {data.frame.shape[1]} columns from {table}; "
        f"target {config.target!r}: {n_pos:,} {data.labels[1]!r} ({n_pos / len(data.y):.1%}), "
        f"{len(data.y) - n_pos:,} {data.labels[0]!r}"
    )
    if data.left_out:
        counts = ", ".join(f"{v!r} {n:,}" for v, n in data.left_out.items())
        console.print(f"[yellow]left out rows whose {config.target!r} is neither:[/] {counts}")
    print_decisions(data.decisions)
    for note in data.notes:
        console.print(f"[yellow]note:[/] {note}")
    split = (
        f"time split on {config.time_col!r}"
        if config.time_col
        else (f"{config.cv_repeats}x{config.cv_folds} repeated stratified cross-validation")
    )
    console.print(f"evaluating by {split}, then fitting the final model on all rows")
    with progress_bar() as progress:
        run = train_tabular(
            data,
            config,
            model_out=model_out,
            workdir=workdir,
            progress=progress,
            register=register,
        )
    model = run.model
    console.print(
        f"model: [bold]{model.chosen_}[/], the simplest within one paired standard error of "
        f"the best held-out log loss on the training rows ({choice_text(model)}); chosen in "
        "evaluation: " + ", ".join(f"{k} {v}x" for k, v in run.fold_choices.items())
    )
    if model.chosen_ == "prior":
        err_console.print(
            "[bold yellow]no usable signal:[/] no model beat the class rate on held-out rows, "
            "so the saved model predicts the training win rate for every deal"
        )
    print_training_summary(run.metrics)
    if metrics_json is not None:
        write_metrics_json(run.metrics, metrics_json)
    import mlflow

    console.print(
        f"saved the MLflow pyfunc model to {run.model_dir} "
        f"(mlflow.pyfunc.load_model(...).predict(rows) -> 'probability'); "
        f"MLflow run {run.run_id} in experiment {EXPERIMENT!r} of {mlflow.get_tracking_uri()} "
        f"({run.seconds:.1f} s)"
    )
    if run.model_version is not None:
        console.print(
            f"registered as {register!r} version {run.model_version} ({run.alias}): "
            f"mlflow.pyfunc.load_model('models:/{register}@{run.alias}')"
        )


def choice_text(model) -> str:
    """Each candidate's held-out log loss with its own standard error; beside the others,
    how far each is from the best and the paired standard error the rule compared it with."""
    best = min(model.selection_, key=model.selection_.get)
    parts = []
    for name, loss in sorted(model.selection_.items(), key=lambda item: item[1]):
        text = f"{name} {loss:.4f} +- {model.selection_own_se_[name]:.4f}"
        if name != best:
            text += (
                f" [+{loss - model.selection_[best]:.4f} vs {best}, "
                f"paired SE {model.selection_se_[name]:.4f}]"
            )
        parts.append(text)
    return "; ".join(parts)


def print_decisions(decisions) -> None:
    """One row per column: inferred kind, used or dropped, and why; warnings underneath."""
    from rich.table import Table

    table = Table(title="column decisions")
    for name in ("column", "kind", "use", "why", "AUC alone"):
        table.add_column(name, justify="right" if name == "AUC alone" else "left")
    for d in decisions:
        use = (
            "[green]used[/]" if d.used else ("target" if d.kind == "target" else "[red]dropped[/]")
        )
        why = d.reason + (f"\n[yellow]warning: {d.warning}[/]" if d.warning else "")
        auc = "" if d.auc is None else f"{d.auc:.3f}"
        table.add_row(str(d.column), d.kind, use, why, auc)
    console.print(table)
    warned = [d for d in decisions if d.warning]
    leaks = [d for d in decisions if d.reason.startswith("leak")]
    for d in leaks:
        err_console.print(f"[bold yellow]excluded as an outcome leak:[/] {d.column}: {d.reason}")
    for d in warned:
        err_console.print(f"[bold yellow]warning:[/] {d.column}: {d.warning}")
