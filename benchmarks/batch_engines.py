"""``spm-ml batch`` by both engines on the same work folder: wall time of each command and
whether their rows agree (probabilities to 1e-9, every other value equal).

    spm-ml quickstart --workdir /tmp/qs-spark
    python benchmarks/batch_engines.py --workdir /tmp/qs-spark --as-of 2025-11-14 \\
        --spark-master 'local[2]' [--chunk-size N]

Each engine runs as its own ``spm-ml batch`` process (Spark's JVM start-up included), pandas
first, then Spark, into a fresh folder each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TABLES = {"deal_scores": "deal_id", "rep_risk": "rep_id", "forecast": "forecast_id"}
PROBABILITIES = {"probability", "p_miss", "attrition_probability"}


def run(engine: str, args: argparse.Namespace, out: Path) -> float:
    command = [
        sys.executable, "-m", "spm_ml.cli", "batch", "--workdir", str(args.workdir),
        "--out", str(out), "--engine", engine, "--chunk-size", str(args.chunk_size),
    ]  # fmt: skip
    if args.as_of:
        command += ["--as-of", args.as_of]
    if engine == "spark" and args.spark_master:
        command += ["--spark-master", args.spark_master]
    env = os.environ | {"SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def largest_gap(a: Path, b: Path) -> tuple[float, list[str]]:
    """The largest probability difference, and the columns whose other values differ."""
    gap, differ = 0.0, []
    for table, key in TABLES.items():
        x, y = (
            pd.read_parquet(p / f"{table}.parquet").sort_values(key).reset_index(drop=True)
            for p in (a, b)
        )
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            return np.inf, [table]
        for name in x.columns:
            if name in PROBABILITIES:
                gap = max(gap, float(np.nanmax(np.abs(x[name] - y[name]), initial=0.0)))
            elif not x[name].equals(y[name]):
                differ.append(f"{table}.{name}")
    return gap, differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--as-of")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--chunk-size", type=int, default=5000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="batch-engines-"))
    try:
        seconds = {e: run(e, args, root / e) for e in ("pandas", "spark")}
        manifests = {e: json.loads((root / e / "manifest.json").read_text()) for e in seconds}
        gap, differ = largest_gap(root / "pandas", root / "spark")
        for engine, wall in seconds.items():
            m = manifests[engine]
            print(
                f"{engine}: {wall:.1f} s wall; in the job {m['timings_s']['total']:.1f} s "
                f"({json.dumps(m['timings_s'])}); rows {json.dumps(m['rows'])}; "
                f"chunks {m['chunks']['written']['deal_scores']}"
            )
        print(f"largest probability difference {gap:.2e}; other values differing: {differ}")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
