"""Does a refactor of the training path change what it trains?  Save a run, compare a run.

Trains deal win on a small simulated organisation (20 reps x 18 months, seed 3; about two
minutes on 2 cores) and either saves what came out (``save``) or compares the run of the
current code with the saved one (``compare``): held-out probabilities of the model and its
references to the bit, the metrics document, the slices and the model's training record
(all but the recipe digest, which names the code's commit).  Run ``save`` on the commit
before a change, ``compare`` after it::

    git checkout BEFORE && python benchmarks/training_parity.py save /tmp/parity.pkl
    git checkout AFTER && python benchmarks/training_parity.py compare /tmp/parity.pkl

Prints the headline figures either way, for the before/after table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import pandas as pd


def train() -> dict:
    from spm_ml.data.simulate import SimulationConfig, simulate
    from spm_ml.training.deal_win import DealWinTrainConfig, train_deal_win

    tables = simulate(SimulationConfig(n_reps=20, months=18, seed=3)).tables
    with tempfile.TemporaryDirectory() as tmp:
        run = train_deal_win(
            tables, workdir=Path(tmp), config=DealWinTrainConfig(bootstrap_samples=30)
        )
    record = dict(vars(run.record))
    record.pop("recipe_digest")
    metrics = {k: v for k, v in run.metrics.items() if k != "mlflow_run_id"}
    return {"metrics": metrics, "slices": run.slices, "held_out": run.held_out, "record": record}


def headline(result: dict) -> str:
    rows = {"model": result["metrics"]["model"], **result["metrics"]["references"]}
    return "\n".join(
        f"{name:20s} ROC AUC {m['roc_auc']:.4f}  Brier {m['brier']:.4f}  ECE {m['ece']:.4f}"
        for name, m in rows.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("save", "compare"))
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    result = train()
    print(headline(result))
    if args.mode == "save":
        args.path.write_bytes(pickle.dumps(result))
        print(f"saved to {args.path}")
        return
    saved = pickle.loads(args.path.read_bytes())
    pd.testing.assert_frame_equal(saved["held_out"], result["held_out"], check_exact=True)
    differing = [k for k in saved["metrics"] if saved["metrics"][k] != result["metrics"].get(k)]
    assert not differing, f"metrics differ: {differing}"
    assert saved["slices"] == result["slices"], "slices differ"
    assert saved["record"] == result["record"], "training records differ"
    print("identical: held-out probabilities, metrics, slices and training record")


if __name__ == "__main__":
    main()
