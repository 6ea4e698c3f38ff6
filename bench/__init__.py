"""Benchmarks (not part of the product): ``bench/ledger_bench.py`` measures the ledger over HTTP."""
