"""Benchmark harness: ingest, training input and bulk scoring, each against a same-run baseline.

`python -m bench.run --help` (or `make bench`) runs everything and writes
``reports/bench/results.json`` and ``reports/bench/results.md``. See docs/performance.md
for what is measured, how, and where the time goes.
"""
