"""MLproject entry point ``main``: the quickstart job (same code path as ``spm-ml quickstart``)."""

from __future__ import annotations

import argparse

from spm_ml.cli import app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default="spm-ml-quickstart")
    args = parser.parse_args()
    app(["quickstart", "--workdir", args.workdir])


if __name__ == "__main__":
    main()
