"""Benchmark: ``mlmtool serve`` under load vs the same predictions through the Python API.

Starts ``python -m mlmtool serve -m en-mini --port 0`` in a subprocess, sends 500 different
one-mask sentences to ``POST /api/predict`` from 8 client threads at once (httpx, keep-alive),
and measures requests per second and the p50/p99 latency a client sees. Then, after the
server has stopped (so the two never share the CPU), the same 500 predictions run one by one
through ``mlmtool.predict(lm, text).to_dict()`` in this process (on one worker thread, as
the server computes them). Printed: both throughputs,
the latencies, and the server's overhead as a ratio (API predictions/s ÷ server requests/s;
1.0 = free). Every server answer is checked against the Python API's.

The server runs one prediction at a time per model (``mlmtool/server/worker.py``), so with 8
clients a request's latency is about its wait behind the 7 others plus its own compute.

Usage: ``python -m scripts.benchmarks.bench_serve [--requests 500] [--concurrency 8] [--model en-mini]``
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

WORDS = ("time year people way day man thing woman life child world school state family student "
         "group country problem hand part place case week company system program question work "
         "number night point home water room mother area money story fact month book eye job word "
         "house friend father hour game line end member car city name team minute idea").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` different sentences of 5-25 words with one [MASK] each (seeded)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 25))]
        words[rng.randrange(len(words))] = "[MASK]"
        text = "The " + " ".join(words) + "."
        if text not in out:
            out.append(text)
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def start_server(model: str):
    """``(process, url)`` once the server answers."""
    import httpx

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "mlmtool", "serve", "-m", model, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    m = re.match(r"^mlmtool serve: (\S+) ", line)
    if not m:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r} {proc.stderr.read()}")
    url = m.group(1)
    for _ in range(200):
        try:
            if httpx.get(url + "api/models", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, url


def load_test(url: str, texts: list[str], concurrency: int) -> tuple[float, list[float], list[dict]]:
    """``(seconds, latencies in s, answers)`` for all ``texts``, ``concurrency`` at a time."""
    import httpx

    local = threading.local()

    def ask(text: str):
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=120)
        t0 = time.perf_counter()
        r = client.post("/api/predict", json={"text": text})
        took = time.perf_counter() - t0
        r.raise_for_status()
        return took, r.json()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(ask, texts[: 2 * concurrency]))  # warm-up: connections, first calls
        t0 = time.perf_counter()
        results = list(pool.map(ask, texts))
        wall = time.perf_counter() - t0
    return wall, [r[0] for r in results], [r[1] for r in results]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--model", default="en-mini")
    args = ap.parse_args(argv)
    texts = sentences(args.requests)

    proc, url = start_server(args.model)
    try:
        wall, latencies, answers = load_test(url, texts, args.concurrency)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)

    import torch

    from mlmtool.analysis.predict import predict
    from mlmtool.models import load

    lm = load(args.model)

    def one(text: str) -> tuple[float, dict]:
        t0 = time.perf_counter()
        out = predict(lm, text).to_dict()
        return time.perf_counter() - t0, out

    # One worker thread, as the server computes (a thread of its pool, one request at a time):
    # torch's OpenMP threads spin-wait differently in the main thread, which on a busy
    # 2-core machine made the main thread up to 7x slower than the server for the same calls.
    with ThreadPoolExecutor(1) as pool:
        list(pool.map(one, texts[:16]))  # warm-up
        t_all = time.perf_counter()
        timed = list(pool.map(one, texts))
        api_wall = time.perf_counter() - t_all
    api_times, api_answers = [t for t, _ in timed], [a for _, a in timed]

    same = sum(a == b for a, b in zip(answers, api_answers))
    server_rps, api_rps = len(texts) / wall, len(texts) / api_wall
    print(f"mlmtool serve -m {args.model}: {len(texts)} POST /api/predict, {args.concurrency} concurrent clients, "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    print(f"  server     {server_rps:7.1f} requests/s   latency p50 {1000 * percentile(latencies, 50):7.1f} ms  "
          f"p99 {1000 * percentile(latencies, 99):7.1f} ms")
    print(f"  Python API {api_rps:7.1f} predictions/s per call p50 {1000 * percentile(api_times, 50):7.1f} ms  "
          f"p99 {1000 * percentile(api_times, 99):7.1f} ms  (one by one, same sentences)")
    print(f"  server overhead: {api_rps / server_rps:.2f}x the Python API's time per prediction "
          f"(1.00 = none); answers equal to the Python API's: {same}/{len(texts)}")


def run() -> None:
    """The section of ``python -m scripts.benchmarks.bench`` (default arguments)."""
    main([])


if __name__ == "__main__":
    main()
