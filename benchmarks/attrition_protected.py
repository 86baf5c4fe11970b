"""Attrition on the IBM HR export: what leaving out the protected attributes costs.

``spm-ml train attrition --table`` never uses age, gender, marital status (or any protected
attribute) as a feature.  This runs the same flat-export trainer twice on the public IBM HR
file, once as shipped (protected attributes excluded) and once with them allowed (for this
measurement only; the CLI offers no way to), and prints held-out ROC AUC with its 95%
interval, Brier and ECE for the model and the tuned logistic reference of each run::

    python benchmarks/attrition_protected.py [--file PATH]

Default file: ``../shared/data/ibm_hr_attrition/WA_Fn-UseC_-HR-Employee-Attrition.csv``
beside the repository (SOURCES.md there says where it comes from).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

DEFAULT_FILE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "ibm_hr_attrition"
    / "WA_Fn-UseC_-HR-Employee-Attrition.csv"
)


def main() -> None:
    from spm_ml.training.tabular import TabularTrainConfig, load_tabular, train_tabular

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    args = parser.parse_args()
    shipped = TabularTrainConfig(
        target="Attrition", positive="Yes", family="attrition", exclude_protected=True
    )
    rows = []
    for name, config in (
        ("without protected attributes (shipped)", shipped),
        ("with protected attributes (measurement only)", replace(shipped, exclude_protected=False)),
    ):
        data = load_tabular(args.file, config)
        used = [d.column for d in data.decisions if d.used]
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            run = train_tabular(data, config, model_out=Path(tmp) / "model", workdir=Path(tmp))
            seconds = time.perf_counter() - started
        model = run.metrics["model"]
        logistic = run.metrics["references"]["logistic_regression"]
        rows.append(
            f"| {name} | {len(used)} | {run.model.chosen_} | {model['roc_auc']:.3f} "
            f"[{model['ci95']['roc_auc'][0]:.3f}, {model['ci95']['roc_auc'][1]:.3f}] | "
            f"{model['brier']:.4f} | {model['ece']:.3f} | {logistic['roc_auc']:.3f} | "
            f"{seconds:.0f} s |"
        )
    header = "| run | features | chosen | ROC AUC [95% CI] | Brier | ECE | logistic AUC | wall |"
    print(header)
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
