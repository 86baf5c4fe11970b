"""``spm-ml train deal-win|attrition --table FILE``: the terminal side of training on a flat
export."""

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
    tracking_uri: str | None = None,
) -> None:
    """Read and screen ``table``, print every column decision, train, print the metrics;
    all of it within ``config.time_budget`` seconds (reading and screening included)."""
    from spm_ml.cli import _common
    from spm_ml.cli.models import print_training_summary
    from spm_ml.models.learner_search import Deadline
    from spm_ml.training.family import write_metrics_json
    from spm_ml.training.tabular import load_tabular, protocol_text, train_tabular

    deadline = Deadline(config.time_budget, started=_common.COMMAND_STARTED)
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
    console.print(
        f"evaluating by {protocol_text(len(data.y), config)}, then fitting the final model on "
        f"all rows; time budget {config.time_budget:.0f} s for the whole run "
        f"({deadline.elapsed():.0f} s spent reading and screening)"
    )
    with progress_bar(deadline) as progress:
        run = train_tabular(
            data,
            config,
            model_out=model_out,
            workdir=workdir,
            progress=progress,
            register=register,
            tracking_uri=tracking_uri,
            deadline=deadline,
        )
    model = run.model
    console.print(
        f"model: [bold]{model.chosen_}[/], the simplest single candidate within one paired "
        "standard error of the best held-out log loss on the training rows, or the blend "
        f"when it beats every single one ({choice_text(model)}); chosen in "
        "evaluation: " + ", ".join(f"{k} {v}x" for k, v in run.fold_choices.items())
    )
    console.print(search_text(model, run.split_params))
    if model.chosen_ == "prior":
        err_console.print(
            "[bold yellow]no usable signal:[/] no model beat the class rate on held-out rows, "
            "so the saved model predicts the training rate of the outcome for every row"
        )
    print_training_summary(run.metrics)
    if metrics_json is not None:
        write_metrics_json(run.metrics, metrics_json)
    import mlflow

    console.print(
        f"saved the MLflow pyfunc model to {run.model_dir} "
        f"(mlflow.pyfunc.load_model(...).predict(rows) -> 'probability'); "
        f"MLflow run {run.run_id} in experiment {config.experiment!r} of "
        f"{mlflow.get_tracking_uri()} "
        f"({deadline.elapsed():.1f} s of the {config.time_budget:.0f} s budget)"
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


def search_text(model, split_params: dict) -> str:
    """What the search did: LightGBM trials and why they stopped, the blend's recipe."""
    search = model.search_
    stopped = f"stopped by {search.get('stopped_by', 'n/a')}"
    if search.get("kept_default"):
        stopped += "; the default kept: the best trial was within one standard error"
    if split_params.get("split") == "cv":
        text = (
            f"LightGBM search: {search.get('trials', 0)} trials on all rows ({stopped}), "
            f"{split_params.get('search_trials_evaluation', 0)} in evaluation"
        )
    else:
        text = (
            f"LightGBM search: {search.get('trials', 0)} trials on the training rows "
            f"({stopped}); the final model refits that choice on all rows"
        )
    if model.chosen_ == "blend":
        a, b = model.blend_["parts"]
        weight = model.blend_["weight"]
        text += f"; blend = {weight:.1f} x {a} + {1 - weight:.1f} x {b} (log-odds)"
    if split_params.get("cv_repeats_asked", 0) > split_params.get("cv_repeats", 0):
        text += (
            f"; {split_params['cv_repeats']} of {split_params['cv_repeats_asked']} CV repeats "
            "fitted in the time budget"
        )
    return text


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
