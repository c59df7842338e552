"""Pure safety logic for SafeServe: normalisation, patterns, models, taxonomy, thresholds.

Nothing in this package imports Ray, so it can be unit-tested in milliseconds and used as a library.
"""
