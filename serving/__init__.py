"""The HTTP service (BentoML); nothing in ``spm_ml`` imports it."""
