"""MLproject entry point ``train_deal_win`` (same code path as ``spm-ml train deal-win``)."""

from __future__ import annotations

import argparse

from spm_ml.cli import app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="auto", help="auto: WORKDIR/data")
    parser.add_argument("--workdir", default="spm-ml-quickstart")
    parser.add_argument("--every-days", type=float, default=7)
    parser.add_argument("--horizon-days", type=float, default=180)
    parser.add_argument("--metrics-json", default="none")
    parser.add_argument(
        "--custom-fields", default="none", help="comma-separated custom fields; none: no field"
    )
    args = parser.parse_args()
    argv = [
        "train",
        "deal-win",
        "--workdir",
        args.workdir,
        "--every-days",
        str(int(args.every_days)),
        "--horizon-days",
        str(int(args.horizon_days)),
    ]
    if args.data not in ("", "auto"):
        argv += ["--data", args.data]
    if args.metrics_json not in ("", "none"):
        argv += ["--metrics-json", args.metrics_json]
    if args.custom_fields not in ("", "none"):
        for name in args.custom_fields.split(","):
            if name.strip():
                argv += ["--custom-field", name.strip()]
    app(argv)


if __name__ == "__main__":
    main()
