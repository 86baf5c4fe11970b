"""The public entry point: ``simulate(config) -> SimulatedOrg``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from spm_ml.data.simulate import assemble, engine
from spm_ml.data.simulate.config import SimulationConfig
from spm_ml.data.tables import Tables

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: ``"simulate"`` (months), ``"emails"`` (text
batches), ``"tables"``."""


@dataclass(frozen=True)
class SimulatedOrg:
    """A simulated organisation: the contract tables plus the latent truth behind them.

    Attributes
    ----------
    tables
        The eight contract tables, cut at ``tables.extracted_at`` (= end of the simulation).
    truth
        Latent ground truth, not part of the contract: ``rep_months`` (skill, engagement,
        manager quality, underpay, hazard per rep and month), ``rep_quarters`` (quota,
        bookings, attainment), ``deals`` (health, fit, eventual outcome even for deals still
        open), ``emails`` (true tone per email and per sentence) and ``deal_steps`` (the
        health path of every deal).
    config
        The configuration that produced it (same config, identical frames).
    """

    tables: Tables
    truth: dict[str, pd.DataFrame]
    config: SimulationConfig


def simulate(
    config: SimulationConfig | None = None, progress: Progress | None = None
) -> SimulatedOrg:
    """Simulate a sales organisation.

    Parameters
    ----------
    config
        Size, seed, start, realism targets and causal knobs; defaults to
        ``SimulationConfig()`` (50 AEs, 24 months from 2024-01-01, seed 0).
    progress
        Optional callback ``progress(stage, done, total)``; the library never prints, the
        CLI draws a progress bar from it.

    Returns
    -------
    SimulatedOrg
        Deterministic for a given config.
    """
    config = config or SimulationConfig()
    logger.info(
        "simulating %d reps x %d months (seed %d)", config.n_reps, config.months, config.seed
    )
    raw = engine.run(config, progress)
    tables, truth = assemble.build(raw, progress)
    logger.info("simulated %r", tables)
    return SimulatedOrg(tables=tables, truth=truth, config=config)
