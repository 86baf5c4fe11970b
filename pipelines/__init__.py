"""MLproject entry points: thin shells over the same functions as the ``spm-ml`` CLI."""
