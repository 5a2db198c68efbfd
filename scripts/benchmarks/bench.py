#!/usr/bin/env python
"""mlmtool benchmarks: every speed/size target, each printed with its reference ratio.

Each section lives in ``scripts/benchmarks/bench_<name>.py`` and defines ``run() -> None``, which
measures mlmtool and its reference in the same run and prints both and the ratio. Run all
sections, or some: ``python -m scripts.benchmarks.bench [--only predict,attention,...]``.

Targets are in the printed lines; nothing here is a test (timings belong in benchmarks).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sections() -> list[str]:
    """Names of the available sections (``bench_<name>.py`` files), sorted."""
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated sections: " + ", ".join(sections()))
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s] or sections()
    unknown = set(chosen) - set(sections())
    if unknown:
        print(f"error: unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(sections())}",
              file=sys.stderr)
        return 2
    for name in chosen:
        print(f"== {name} ==", flush=True)
        start = time.perf_counter()
        spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"bench_{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.run()
        print(f"   ({time.perf_counter() - start:.1f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
