"""``python -m spm_ml.cli``: the same as the ``spm-ml`` command."""

from spm_ml.cli import main

main()
