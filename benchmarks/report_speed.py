"""How long a manager's page takes for 20 reps and 500 open deals: read the batch run,
render, write, then open the file in headless Chromium until ``load``.

    python benchmarks/report_speed.py WORKDIR/outputs/batch [--runs 5]

The run is the given batch run's rows resampled under one manager (the speed test's
``synthetic_outputs``, tests/report/report_expected.py); needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))

from playwright.sync_api import sync_playwright  # noqa: E402
from report_expected import synthetic_outputs  # noqa: E402

from spm_ml.report import read_batch_outputs, render_manager, write_page  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", type=Path, help="a batch run's folder (spm-ml batch --out)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="report-speed-"))
    synthetic_outputs(read_batch_outputs(args.batch), out / "batch")
    built, shown = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(args.runs):
            started = time.perf_counter()
            path = write_page(
                render_manager(read_batch_outputs(out / "batch"), "M-SPEED"), out / "page.html"
            )
            built.append(time.perf_counter() - started)
            page = browser.new_page()
            page.goto(path.as_uri(), wait_until="load")
            shown.append(time.perf_counter() - started)
            page.close()
        browser.close()
    print(
        f"20 reps, 500 open deals, {args.runs} runs: read + built {min(built):.2f}-"
        f"{max(built):.2f} s, shown {min(shown):.2f}-{max(shown):.2f} s (median "
        f"{statistics.median(shown):.2f} s), {path.stat().st_size / 1e3:.0f} kB"
    )


if __name__ == "__main__":
    main()
