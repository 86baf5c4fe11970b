"""The pre-forecast-call batch job: score open deals and write the results where RevOps reads."""
