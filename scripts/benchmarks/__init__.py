"""Benchmarks: each ``bench_<name>.py`` measures mlmtool against its reference in the same run (``python -m scripts.benchmarks.bench``)."""
