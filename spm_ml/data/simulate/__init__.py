"""The simulated sales organisation: the embedded default and the models' ground truth.

>>> from spm_ml.data.simulate import SimulationConfig, simulate
>>> org = simulate(SimulationConfig(n_reps=20, months=6, seed=1))  # doctest: +SKIP
>>> org.tables.deals.head()  # doctest: +SKIP

``org.tables`` holds the nine contract tables as of ``extracted_at`` (the end of the
simulation); ``org.truth`` holds the latent state behind them (rep skill, engagement and
manager per month, deal health, the true tone of each email, every pay review and manager
exit...), which is not part of the contract and exists to evaluate models and test that
explanations point at real drivers.  The causal story is documented in ``docs/simulator.md``
and in the docstrings of ``workforce``, ``careers``, ``activity``, ``lifecycle``, ``pay`` and
``quarter_end``.
"""

from __future__ import annotations

from spm_ml.data.simulate.config import (
    DealKnobs,
    EmailKnobs,
    PayKnobs,
    PeopleKnobs,
    Range,
    RealismTargets,
    SimulationConfig,
)
from spm_ml.data.simulate.realism import measure_realism, realism_report
from spm_ml.data.simulate.simulate import SimulatedOrg, simulate

__all__ = [
    "DealKnobs",
    "EmailKnobs",
    "PayKnobs",
    "PeopleKnobs",
    "Range",
    "RealismTargets",
    "SimulatedOrg",
    "SimulationConfig",
    "measure_realism",
    "realism_report",
    "simulate",
]
