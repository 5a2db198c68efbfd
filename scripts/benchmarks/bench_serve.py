"""Benchmark: ``mlmtool serve`` under load (dynamic batching) vs the Python API, batched and one by one.

Starts ``python -m mlmtool serve -m en-mini --port 0`` in a subprocess and sends the same 500
different one-mask sentences to ``POST /api/predict`` from 1, 8 and 32 client threads at once
(httpx, keep-alive; each client sends its next request when the last is answered). Per run:
requests per second, the p50/p99 latency a client sees, and errors (any answer but 200). Then,
after the server has stopped (so the two never share the CPU), the same predictions through
the Python API in this process: ``mlmtool.predict(lm, texts)`` in batches of 32 (the server's
largest batch, :data:`mlmtool.server.batcher.MAX_BATCH`) and one text at a time.

Concurrent requests of the same kind and options are run by the server as one batch
(``mlmtool/server/batcher.py``: a 5 ms window, a 30 ms refill for the clients just answered,
at most 32 requests, on the model's own thread), so with 8 clients the
throughput should be several times that of 1 client. Targets (issue 29): 8 clients ≥ 3x the
requests/s of 1 client on the same server, p99 under 1 s; 32 clients: no errors. Every
server answer is checked against the one-by-one Python API's with
:func:`mlmtool.server.batcher.same_answer` (equal up to float32 rounding).

Usage: ``python -m scripts.benchmarks.bench_serve [--requests 500] [--clients 1 8 32] [--model en-mini]
[--max-pieces 1]`` (``--max-pieces 1``: piece-level requests, what the HF pipeline answers).
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

#: The environment before :func:`main` changed it for the Python API rows (the server starts with this).
ORIGINAL_ENV = dict(os.environ)

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

    env = {**ORIGINAL_ENV, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # the server
    # sets its own threads (mlmtool.server.worker.prepare_threads), as it does for a user
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


def load_test(url: str, texts: list[str], concurrency: int, options: dict | None = None) -> tuple[float, list[float], list]:
    """``(seconds, latencies in s, answers)`` for all ``texts``, ``concurrency`` at a time; an
    answer is the JSON of a 200, else the error as ``"HTTP 429: ..."`` (or the exception)."""
    import httpx

    local = threading.local()

    def ask(text: str):
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=120)
        t0 = time.perf_counter()
        try:
            r = client.post("/api/predict", json={"text": text, **(options or {})})
        except httpx.HTTPError as exc:
            return time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
        took = time.perf_counter() - t0
        return took, r.json() if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:200]}"

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(ask, texts[: 2 * concurrency]))  # warm-up: connections, first calls
        t0 = time.perf_counter()
        results = list(pool.map(ask, texts))
        wall = time.perf_counter() - t0
    return wall, [r[0] for r in results], [r[1] for r in results]


def api_runs(model: str, texts: list[str], batch: int, options: dict | None = None
             ) -> dict[str, tuple[float, list[float], list]]:
    """The Python API on ``texts``: ``{"batched": ..., "batches of 8": ..., "one by one": ...}``,
    each ``(seconds, latencies of each call in s, answers)``. Batches of 8 are what 8 clients
    can give the server at most, so their ratio to one by one bounds the 8-client/1-client ratio."""
    from mlmtool.analysis.predict import predict
    from mlmtool.models import load
    from mlmtool.server.worker import ModelGate

    lm = load(model)
    groups = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    eights = [texts[i:i + 8] for i in range(0, len(texts), 8)]

    def call(group: list[str]) -> tuple[float, list]:
        t0 = time.perf_counter()
        out = [p.to_dict() for p in predict(lm, group, **(options or {}))]
        return time.perf_counter() - t0, out

    out = {}
    # As the server computes: on a gate's model thread with its thread count (MKL_NUM_THREADS=1
    # from main(); mlmtool/server/worker.py, "Threads for the model").
    gate = ModelGate()
    try:
        for name, calls in (("batched", groups), ("batches of 8", eights), ("one by one", [[t] for t in texts])):
            for c in calls[:4]:  # warm-up
                gate.run(call, c)
            t0 = time.perf_counter()
            timed = [gate.run(call, c) for c in calls]
            out[name] = (time.perf_counter() - t0, [t for t, _ in timed], [a for _, g in timed for a in g])
    finally:
        gate.close()
    return out


def report(model: str, texts: list[str], runs: dict, api: dict) -> None:
    """Print the table, the 8/1 ratio and the targets."""
    from mlmtool.server.batcher import MAX_BATCH, same_answer
    from mlmtool.server.worker import ModelGate

    reference = api["one by one"][2]
    print(f"mlmtool serve -m {model}: {len(texts)} POST /api/predict per run; torch threads "
          f"{ModelGate().threads} (MKL_NUM_THREADS={os.environ.get('MKL_NUM_THREADS')}), {os.cpu_count()} CPUs")
    print(f"  {'':24} {'requests/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>6} {'answers equal':>14}")
    rows = [(f"server, {c} client{'s' * (c > 1)}", wall, lat, ans) for c, (wall, lat, ans) in runs.items()]
    rows += [(f"Python API, {name}", *api[name]) for name in ("batched", "batches of 8", "one by one")]
    for label, wall, latencies, answers in rows:
        errors = sum(isinstance(a, str) for a in answers)
        equal = sum(not isinstance(a, str) and same_answer(a, b) is None for a, b in zip(answers, reference))
        print(f"  {label:24} {len(texts) / wall:10.1f} {1000 * percentile(latencies, 50):9.1f} "
              f"{1000 * percentile(latencies, 99):9.1f} {errors:6d} {equal:>8d}/{len(texts)}")
        for a in answers:
            if isinstance(a, str):
                print(f"    first error: {a}")
                break
    print(f"  (Python API latencies: per call; batched = {MAX_BATCH} sentences per call, batches of 8 = 8)")
    if 1 in runs and 8 in runs:
        ratio = runs[1][0] / runs[8][0]
        p99 = percentile(runs[8][1], 99)
        print(f"  8 clients / 1 client: {ratio:.2f}x the requests/s (target >= 3x); "
              f"p99 at 8 clients {1000 * p99:.0f} ms (target < 1000 ms)")
        bound = api["one by one"][0] / api["batches of 8"][0]
        print(f"  the Python API's own gain from batches of 8 over one by one: {bound:.2f}x (what 8 clients "
              "can gain at most, HTTP aside)")
    if 32 in runs:
        print(f"  32 clients: {sum(isinstance(a, str) for a in runs[32][2])} errors (target 0)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32],
                    help="concurrent clients of each run (default 1 8 32)")
    ap.add_argument("--model", default="en-mini")
    ap.add_argument("--max-pieces", type=int, default=None,
                    help="max_pieces of every request (default: predict's, whole words; 1 = piece-level)")
    args = ap.parse_args(argv)
    from mlmtool.server.worker import prepare_threads

    prepare_threads()  # the Python API rows run as the server computes (before torch is imported)
    options = {} if args.max_pieces is None else {"max_pieces": args.max_pieces}
    texts = sentences(args.requests)

    proc, url = start_server(args.model)
    runs = {}
    try:
        for clients in args.clients:
            runs[clients] = load_test(url, texts, clients, options)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    from mlmtool.server.batcher import MAX_BATCH

    if options:
        print(f"request options: {options}")
    report(args.model, texts, runs, api_runs(args.model, texts, MAX_BATCH, options))


def run() -> None:
    """The section of ``python -m scripts.benchmarks.bench`` (default arguments)."""
    main([])


if __name__ == "__main__":
    main()
