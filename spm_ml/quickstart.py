"""The main job on the embedded default: simulate, validate, train and register every
family (deal win, then quota risk and attrition) and the email sentiment model, batch-score
open deals.

Everything goes under one work folder, so a newcomer can look at (or delete) all of it:
``data/`` (the organisation), ``mlflow.db`` + ``mlartifacts/`` (the MLflow store),
``outputs/`` (deal scores; ``outputs/batch/``, the pre-call batch run as of the middle of
the last quota period; ``outputs/reports/``, the example manager's page).  Email bodies
are scored for sentiment in memory and only the scores go further: nothing under
``outputs/`` or in MLflow holds email text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spm_ml import registry, settings
from spm_ml.data.io import load_tables, write_tables
from spm_ml.errors import TrainingError
from spm_ml.features.deals import DealFeatureConfig
from spm_ml.training.deal_win import MODEL_NAME, DealWinRun, DealWinTrainConfig, train_deal_win
from spm_ml.training.family import TrainingRun

logger = logging.getLogger(__name__)


def rep_families(sentiment: bool) -> list[tuple[str, object, object]]:
    """``(family, train function, configuration)`` of each rep-level family quickstart
    trains after deal win, reading the same email tone."""
    from spm_ml.training.attrition import AttritionTrainConfig, train_attrition
    from spm_ml.training.quota_risk import QuotaRiskTrainConfig, train_quota_risk

    deal_features = DealFeatureConfig(email_sentiment=sentiment)
    return [
        ("quota-risk", train_quota_risk, QuotaRiskTrainConfig(deal_features=deal_features)),
        ("attrition", train_attrition, AttritionTrainConfig()),
    ]


def register_default_sentiment(workdir: Path) -> str:
    """Register the built-in email sentiment model (the one that scored the emails) as
    ``email-sentiment``, so the service loads its champion like every family's; re-runs
    reuse the version with the same weights."""
    from spm_ml.nlp.default_model import ensure_default_model, load_default_model
    from spm_ml.nlp.pyfunc import register_sentiment_model

    version, _ = register_sentiment_model(
        ensure_default_model(), workdir, model=load_default_model()
    )
    return version


@dataclass
class QuickstartResult:
    workdir: Path
    data_dir: Path
    tracking_uri: str
    run: DealWinRun
    """The deal-win run (the model the outputs are scored by)."""
    rep_runs: dict[str, TrainingRun]
    """The rep-level families' runs (quota risk...), by family name."""
    skipped: dict[str, str]
    """Families the organisation could not train (too few leavers...), and why."""
    scores_parquet: Path
    scores_csv: Path
    n_open_deals: int
    scored_by_version: str
    sentiment_version: str | None = None
    """The registered ``email-sentiment`` version (``None`` with ``sentiment=False``)."""
    batch_dir: Path | None = None
    """The batch run (``spm-ml batch``) the manager pages are built from."""
    batch_as_of: pd.Timestamp | None = None
    report_page: Path | None = None
    """The example manager's page (``spm-ml report``)."""
    report_manager: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def run_quickstart(
    workdir: Path,
    *,
    reps: int = 50,
    months: int = 24,
    seed: int = 0,
    sentiment: bool = True,
    backtest: bool = False,
    progress=None,
) -> QuickstartResult:
    """Run the whole first path under ``workdir`` and say where everything went.

    With ``backtest`` the bookings forecast is back-tested (``spm-ml backtest``, into
    ``outputs/backtest.csv``) before the batch, so the example page carries the team's
    record ("last 6 periods: 5 of 6 inside"); off by default, it costs minutes (152 s on the
    default organisation, docs/benchmarks.md)."""
    from spm_ml.batch.deal_scores import score_open_deals_to_file
    from spm_ml.data.simulate import SimulationConfig, simulate
    from spm_ml.scoring import DealScorer

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    org = simulate(SimulationConfig(n_reps=reps, months=months, seed=seed), progress=progress)
    write_tables(org.tables, data_dir, format="parquet")
    lap("generate")
    tables = load_tables(data_dir)
    lap("validate")
    if sentiment:
        from spm_ml.nlp.signals import with_email_scores

        cache = settings.email_scores_path(workdir)
        tables = with_email_scores(tables, cache=cache, progress=progress)
        lap("email sentiment")
    run = train_deal_win(
        tables,
        workdir=workdir,
        config=DealWinTrainConfig(features=DealFeatureConfig(email_sentiment=sentiment)),
        data_description=f"simulated org reps={reps} months={months} seed={seed}",
        progress=progress,
        reuse_identical=True,
    )
    lap("train deal-win")
    description = f"simulated org reps={reps} months={months} seed={seed}"
    rep_runs, skipped = {}, {}
    for family, train, config in rep_families(sentiment):
        try:
            rep_runs[family] = train(
                tables,
                workdir=workdir,
                config=config,
                data_description=description,
                progress=progress,
                reuse_identical=True,
            )
        except TrainingError as err:  # a small organisation may lack, say, leavers
            logger.warning("%s not trained: %s", family, err)
            skipped[family] = str(err)
        lap(f"train {family}")
    sentiment_version = None
    if sentiment:
        sentiment_version = register_default_sentiment(workdir)
        lap("register sentiment")
    uri = registry.use_local_store(workdir)
    # the outputs are scored by the version just trained (or reused), whatever the champion
    scoring_model = registry.load_model(MODEL_NAME, version=run.model_version)
    scorer = DealScorer.for_model(scoring_model, tables)
    outputs = workdir / "outputs"
    scores = score_open_deals_to_file(scorer, outputs / "deal_scores.parquet")
    scores.to_csv(outputs / "deal_scores.csv", index=False)
    lap("batch score")
    if backtest:
        from spm_ml.forecast.run import run_backtest, write_backtest

        write_backtest(run_backtest(load_tables(data_dir), workdir), outputs)
        lap("back-test")
    batch_as_of = example_as_of(tables)
    manager, page = batch_and_example_page(workdir, data_dir, batch_as_of)
    lap("pre-call batch and manager page")
    return QuickstartResult(
        workdir=workdir,
        data_dir=data_dir,
        tracking_uri=uri,
        run=run,
        rep_runs=rep_runs,
        skipped=skipped,
        scores_parquet=outputs / "deal_scores.parquet",
        scores_csv=outputs / "deal_scores.csv",
        n_open_deals=len(scores),
        scored_by_version=scoring_model.version,
        sentiment_version=sentiment_version,
        batch_dir=outputs / "batch",
        batch_as_of=batch_as_of,
        report_page=page,
        report_manager=manager,
        seconds=timings,
    )


def example_as_of(tables) -> pd.Timestamp:
    """The middle of the last quota period (day precision): the simulated data ends exactly
    at a quarter's close, where no period is open and nothing is left to forecast."""
    quotas = tables.quotas
    last = quotas["period_start"].max()
    end = quotas.loc[quotas["period_start"] == last, "period_end"].max()
    return (last + (end - last) / 2).floor("D")


def batch_and_example_page(
    workdir: Path, data_dir: Path, as_of: pd.Timestamp
) -> tuple[str | None, Path | None]:
    """``spm-ml batch`` into ``outputs/batch`` as of ``as_of`` with the champions, then
    the page of the manager with the most reps in it (``outputs/reports/``); the manager
    and the page (``None`` when the run has no manager)."""
    from spm_ml.batch.job import BatchOptions, run_batch
    from spm_ml.report import read_batch_outputs, render_manager, write_page

    folder = workdir / "outputs" / "batch"
    run_batch(BatchOptions(source=str(data_dir), target=str(folder), workdir=workdir, as_of=as_of))
    outputs = read_batch_outputs(folder)
    counts = outputs.reps["manager_id"].dropna().astype(str).value_counts()
    if counts.empty:
        return None, None
    manager = sorted(counts[counts == counts.max()].index)[0]
    page = workdir / "outputs" / "reports" / f"manager-{manager}.html"
    return manager, write_page(render_manager(outputs, manager), page)
