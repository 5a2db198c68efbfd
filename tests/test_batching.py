"""Dynamic batching of ``mlmtool serve`` (:mod:`mlmtool.server.batcher`), on the tiny models.

No test measures time. Requests are made to arrive together by holding the model's gate
while they are fired from threads, waiting until the batcher counts them all, then releasing
the gate: they must be served by one batched call (counted with a hook on the encoder), and
each answer must be the answer of the same request alone
(:func:`mlmtool.server.batcher.same_answer`: equal up to float32 rounding).
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")

from mlmtool.errors import MlmtoolError  # noqa: E402
from mlmtool.server.app import Limits, create_app  # noqa: E402
from mlmtool.server.batcher import Batcher, options_key, same_answer  # noqa: E402
from mlmtool.server.state import build_state  # noqa: E402
from mlmtool.server.worker import BusyError, ModelGate  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["the cat [MASK] on the mat .", "the dog ran in the [MASK] .", "she opened the [MASK] and let the cat out .",
         "[MASK] read a good book .", "the big red [MASK] was very fast .", "the [MASK] sat on the [MASK] .",
         "he walked to the bank of the [MASK] .", "i drink a cup of [MASK] every morning ."]
PLAIN = [t.replace("[MASK]", "cat") for t in TEXTS]


def wait_until(condition, what: str) -> None:
    """Wait (not a timing assertion: up to a minute on a busy machine) until ``condition()``."""
    pause = threading.Event()
    for _ in range(6000):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError(f"never happened: {what}")


def together(gate: ModelGate, batcher: Batcher, calls: list) -> list:
    """Run ``calls`` on threads while holding ``gate``; release it once all wait in ``batcher``.

    Returns each call's answer, or the exception it raised, in order."""
    out: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            out[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    before = batcher.waiting
    with gate.hold():
        for t in threads:
            t.start()
        wait_until(lambda: batcher.waiting == before + len(calls), f"{len(calls)} requests waiting")
    for t in threads:
        t.join(120)
    return out


def assert_same_answer(got, expected) -> None:
    diff = same_answer(got, expected)
    assert diff is None, diff


def test_same_answer_allows_float_rounding_only():
    a = {"masks": [{"candidates": [{"word": "cat", "score": 0.25, "ids": [5]}]}]}
    assert same_answer(a, json.loads(json.dumps(a))) is None
    b = json.loads(json.dumps(a))
    b["masks"][0]["candidates"][0]["score"] = 0.25 + 1e-7
    assert same_answer(b, a) is None
    b["masks"][0]["candidates"][0]["score"] = 0.26
    assert same_answer(b, a) == "$.masks[0].candidates[0].score: 0.26 != 0.25"
    b["masks"][0]["candidates"][0].update(score=0.25, word="dog")
    assert same_answer(b, a) == "$.masks[0].candidates[0].word: 'dog' != 'cat'"
    assert same_answer([1, 2], [1]) == "$: 2 items != 1" and same_answer({"a": 1}, {"b": 1}).startswith("$: keys")


def encoder_calls(lm):
    """A hook counting the encoder's forward calls: ``(count, remove)``; ``count[0]`` is the number
    (a pre-hook: a pass stopped at the last layer, :mod:`mlmtool.core.last_layer`, never returns)."""
    count = [0]

    def hook(module, args):
        count[0] += 1

    handle = lm.model.base_model.register_forward_pre_hook(hook)
    return count, handle.remove


@pytest.fixture(scope="module")
def state(tiny_bert):
    return build_state({"bert": tiny_bert}, None, Limits())


def endpoint(kind: str, state, **body):
    """A call of the endpoint function of ``kind`` with this body (no HTTP)."""
    from mlmtool.server.routes.attention import api_attention
    from mlmtool.server.routes.fill import api_predict
    from mlmtool.server.routes.layers import api_layers
    from mlmtool.server.routes.score import api_score
    from mlmtool.server.schemas import AttentionRequest, LayersRequest, PredictRequest, ScoreRequest

    api, request = {"predict": (api_predict, PredictRequest), "attention": (api_attention, AttentionRequest),
                    "score": (api_score, ScoreRequest), "layers": (api_layers, LayersRequest)}[kind]
    return lambda: api(request(**body), state)


CASES = {
    "predict": [{"text": t, "top_k": 3} for t in TEXTS],
    "predict, piece-level": [{"text": t, "top_k": 4, "max_pieces": 1} for t in TEXTS],
    "attention": [{"text": t, "precision": "float16"} for t in PLAIN],
    "score": [{"text": PLAIN[0]}, {"texts": PLAIN[1:4]}, {"text": PLAIN[4]}, {"texts": PLAIN[5:]}],
    "layers": [{"text": t, "top_k": 3} for t in TEXTS],
}


@pytest.mark.parametrize("case", list(CASES))
def test_concurrent_requests_run_as_one_batch_with_the_answers_alone(state, tiny_bert, case):
    kind = case.split(",")[0]
    calls = [endpoint(kind, state, **body) for body in CASES[case]]
    count, unhook = encoder_calls(tiny_bert)
    try:
        alone = [call() for call in calls]
        alone_calls, count[0] = count[0], 0
        batcher = state.batchers["bert"]
        batches = batcher.batches
        answers = together(state.gates["bert"], batcher, calls)
    finally:
        unhook()
    assert batcher.batches == batches + 1  # one batch ...
    assert count[0] < len(calls) and count[0] < alone_calls  # ... in fewer forward calls than requests
    for got, expected in zip(answers, alone):
        assert not isinstance(got, Exception), got
        assert_same_answer(got, expected)


def test_requests_with_other_options_are_other_batches(state):
    bodies = [{"text": t, "top_k": k} for t in TEXTS[:4] for k in (2, 3)]
    calls = [endpoint("predict", state, **b) for b in bodies]
    alone = [call() for call in calls]
    batcher = state.batchers["bert"]
    batches = batcher.batches
    answers = together(state.gates["bert"], batcher, calls)
    assert batcher.batches == batches + 2
    for got, expected, body in zip(answers, alone, bodies):
        assert_same_answer(got, expected)
        assert len(got["masks"][0]["candidates"]) == body["top_k"]


def test_a_bad_request_in_a_batch_gets_its_own_error_and_spoils_nothing(state):
    bodies = [{"text": TEXTS[0]}, {"text": "no mask here ."}, {"text": TEXTS[1]}, {"text": "the " * 70 + "[MASK]"}]
    calls = [endpoint("predict", state, **b) for b in bodies]
    alone = []
    for call in calls:
        try:
            alone.append(call())
        except MlmtoolError as exc:
            alone.append(exc)
    answers = together(state.gates["bert"], state.batchers["bert"], calls)
    for got, expected in zip(answers, alone):
        if isinstance(expected, MlmtoolError):
            assert type(got) is type(expected) and str(got) == str(expected)
        else:
            assert_same_answer(got, expected)


# ---- the batcher's own rules, with a fake computation -------------------------------------

def doubled(log: list):
    def compute(payloads):
        log.append(list(payloads))
        if any(p == "bad" for p in payloads):
            if len(payloads) > 1:
                raise MlmtoolError("one bad input in the batch")
            raise MlmtoolError("bad alone")
        return [2 * p for p in payloads]

    return compute


def test_batches_hold_at_most_max_batch_and_the_oldest_leads_the_rest():
    gate, log = ModelGate(), []
    batcher = Batcher(gate, max_batch=3)
    answers = together(gate, batcher, [lambda i=i: batcher.run("k", i, doubled(log)) for i in range(7)])
    assert answers == [2 * i for i in range(7)]
    assert [len(b) for b in log] == [3, 3, 1] and sorted(sum(log, [])) == list(range(7))
    assert (batcher.batches, batcher.served, batcher.waiting) == (3, 7, 0)


def test_keys_never_mix_and_a_bad_input_is_answered_alone():
    gate, log = ModelGate(), []
    batcher = Batcher(gate)
    calls = [lambda: batcher.run("a", 1, doubled(log)), lambda: batcher.run("b", 10, doubled(log)),
             lambda: batcher.run("a", "bad", doubled(log)), lambda: batcher.run("a", 3, doubled(log))]
    answers = together(gate, batcher, calls)
    assert answers[0] == 2 and answers[1] == 20 and answers[3] == 6
    assert isinstance(answers[2], MlmtoolError) and str(answers[2]) == "bad alone"
    batches = sorted(sorted(str(p) for p in b) for b in log)
    assert batches == [["1"], ["1", "3", "bad"], ["10"], ["3"], ["bad"]]  # two batches, then "a" alone


def test_waiting_is_bounded_and_a_closing_gate_refuses_the_waiting_batch():
    gate, log = ModelGate(), []
    batcher = Batcher(gate, max_waiting=3)
    answers: list = []
    with gate.hold():
        threads = [threading.Thread(target=lambda i=i: answers.append(_outcome(batcher, i, log))) for i in range(3)]
        for t in threads:
            t.start()
        wait_until(lambda: batcher.waiting == 3, "3 requests waiting")
        with pytest.raises(BusyError, match="max_waiting") as busy:
            batcher.run("k", 99, doubled(log))
        assert busy.value.status == 429
        gate.close()
    for t in threads:
        t.join(60)
    assert answers == [503] * 3 and log == [] and batcher.waiting == 0


def _outcome(batcher, i, log):
    try:
        return batcher.run("k", i, doubled(log))
    except BusyError as exc:
        return exc.status


def test_a_bug_reaches_every_request_of_its_batch():
    gate = ModelGate()
    batcher = Batcher(gate)

    def broken(payloads):
        raise RuntimeError("a bug")

    answers = together(gate, batcher, [lambda: batcher.run("k", i, broken) for i in range(3)])
    assert [type(a) for a in answers] == [RuntimeError] * 3 and batcher.waiting == 0


def test_options_key_ignores_the_order_of_options():
    assert options_key("predict", top_k=3, beam=2) == options_key("predict", beam=2, top_k=3) != \
        options_key("predict", top_k=4, beam=2)


# ---- 50 mixed concurrent requests through HTTP equal the command line ---------------------

def cli_json(runner, *args):
    from mlmtool.cli import cli

    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def mixed_requests() -> list[tuple[str, dict]]:
    """50 requests: predict (two top_k), score (two variants), attention, interleaved."""
    out = []
    for i in range(50):
        t, p = TEXTS[i % len(TEXTS)], PLAIN[(i * 3) % len(PLAIN)]
        out.append([("/api/predict", {"text": t, "top_k": 3}), ("/api/predict", {"text": t, "top_k": 5}),
                    ("/api/score", {"text": p}), ("/api/score", {"text": p, "variant": "word-l2r"}),
                    ("/api/attention", {"text": p})][i % 5])
    return out


def cli_answers(runner, model_dir, tmp_path) -> dict:
    """``{(path, json body): the CLI's --json answer}`` for every request of :func:`mixed_requests`."""
    masked, plain = tmp_path / "masked.txt", tmp_path / "plain.txt"
    masked.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    plain.write_text("\n".join(PLAIN) + "\n", encoding="utf-8")
    m = ("-m", str(model_dir), "--json")
    out = {}
    for k in (3, 5):
        for t, answer in zip(TEXTS, cli_json(runner, "predict", *m, "-k", str(k), "-i", str(masked))):
            out["/api/predict", json.dumps({"text": t, "top_k": k})] = answer
    for variant, extra in (("original", {}), ("word-l2r", {"variant": "word-l2r"})):
        for p, answer in zip(PLAIN, cli_json(runner, "score", *m, "--variant", variant, "-i", str(plain))):
            out["/api/score", json.dumps({"text": p, **extra})] = answer
    for p in PLAIN:
        out["/api/attention", json.dumps({"text": p})] = cli_json(runner, "attention", *m, p)
    return out


def assert_attention_is_the_cli(got: dict, expected: dict) -> None:
    from mlmtool.render.html_view import decode_attention

    assert got["tokens"] == expected["tokens"] and got["word_ids"] == expected["word_ids"]
    assert got["special"] == expected["special"]
    weights = decode_attention(got["attention"])  # uint8 levels: error at most 1/510, + float noise
    assert np.abs(weights - np.asarray(expected["attention"], dtype=np.float32)).max() <= 1 / 510 + 1e-5


def test_50_mixed_concurrent_requests_equal_the_cli(tiny_bert, tiny_bert_dir, runner, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    requests = mixed_requests()
    expected = cli_answers(runner, tiny_bert_dir, tmp_path)
    app = create_app({"bert": tiny_bert})
    gate, batcher = app.state.gates["bert"], app.state.server.batchers["bert"]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        with ThreadPoolExecutor(50) as pool:
            with gate.hold():  # let them gather (the app's thread pool takes 40 at a time)
                futures = [pool.submit(client.post, path, json=body) for path, body in requests]
                wait_until(lambda: batcher.waiting >= 30, "30 requests waiting")
            answers = [f.result(120) for f in futures]
    assert [a.status_code for a in answers] == [200] * 50, [a.text for a in answers if a.status_code != 200]
    assert batcher.served == 50 and batcher.batches < 25
    for (path, body), answer in zip(requests, answers):
        want = expected[path, json.dumps(body)]
        if path == "/api/attention":
            assert_attention_is_the_cli(answer.json(), want)
        else:
            assert_same_answer(answer.json(), want)


# ---- the refill: the clients just answered are waited for (fake computation) ----------------

def blocking(log: list, started: threading.Event, release: threading.Event):
    """A compute that records its batch, tells ``started`` and blocks its first batch until ``release``."""
    def compute(payloads):
        log.append(list(payloads))
        started.set()
        if len(log) == 1:
            release.wait()
        return [2 * p for p in payloads]

    return compute


def _in_thread(call, out: list) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread


def test_the_next_batch_waits_for_the_clients_just_answered():
    """A batch of one runs while B waits for the model. When it ends, B does not run alone: it
    waits (within the refill window) for A's client to come back, and both run as one batch."""
    gate, log, started, release = ModelGate(), [], threading.Event(), threading.Event()
    batcher = Batcher(gate, window=0, refill=3600)
    compute = blocking(log, started, release)
    out: list = []
    a = _in_thread(lambda: batcher.run("k", 1, compute), out)
    started.wait()
    b = _in_thread(lambda: batcher.run("k", 2, compute), out)
    wait_until(lambda: gate.waiting == 1, "B waiting for the model")
    release.set()
    a.join()  # A has its answer; its client sends the next request
    c = _in_thread(lambda: batcher.run("k", 3, compute), out)
    for t in (b, c):
        t.join()
    assert log == [[1], [2, 3]] and sorted(out) == [2, 4, 6]
    assert (batcher.batches, batcher.served, batcher.waiting) == (2, 3, 0)


def test_no_refill_long_after_the_last_batch_nor_for_a_lone_client():
    """Past the refill window B runs alone at once; a lone client's next request never waits
    (a wrong wait here would last the hour of ``refill`` and fail ``wait_until``)."""
    ticks = iter(range(0, 10 ** 9, 7200))
    gate, log, started, release = ModelGate(), [], threading.Event(), threading.Event()
    batcher = Batcher(gate, window=0, refill=3600, clock=lambda: next(ticks))  # 2 h between readings
    compute = blocking(log, started, release)
    out: list = []
    _in_thread(lambda: batcher.run("k", 1, compute), out)
    started.wait()
    _in_thread(lambda: batcher.run("k", 2, compute), out)
    wait_until(lambda: gate.waiting == 1, "B waiting for the model")
    release.set()
    wait_until(lambda: len(out) == 2, "B answered alone")
    assert log == [[1], [2]]

    alone = Batcher(ModelGate(), window=0, refill=3600)  # the real clock
    _in_thread(lambda: [alone.run("k", i, doubled(log)) for i in range(3)], out)
    wait_until(lambda: len(out) == 3, "three requests in a row")
    assert out[2] == [0, 2, 4] and alone.batches == 3


# ---- threads: the model's work runs on one thread, with the gate's thread count ----------------

def test_batches_run_on_the_gates_one_model_thread_with_its_thread_count():
    import torch

    gate, seen = ModelGate(threads=1), []
    batcher = Batcher(gate, window=0, refill=0)

    def compute(payloads):
        seen.append((threading.get_ident(), threading.current_thread().name, torch.get_num_threads()))
        return payloads

    try:
        answers = [batcher.run("k", i, compute) for i in range(2)]
        answers += together(gate, batcher, [lambda i=i: batcher.run("j", i, compute) for i in range(3)])
    finally:
        gate.close()
    assert answers == [0, 1, 0, 1, 2] and len(seen) == 3
    assert len({ident for ident, _, _ in seen}) == 1 and seen[0][1].startswith("mlmtool-model")
    assert {count for _, _, count in seen} == {1} and threading.get_ident() not in {s[0] for s in seen}


def test_hold_sets_the_holders_thread_count():
    import torch

    before = torch.get_num_threads()
    try:
        with ModelGate(threads=1).hold():
            assert torch.get_num_threads() == 1
        with ModelGate(threads=None).hold():  # None: left alone
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


PREPARE = """
import json, os, sys
{first}
from mlmtool.server import worker
changed = worker.prepare_threads()
print(json.dumps([changed, os.environ.get("MKL_NUM_THREADS"), worker._SERVER_THREADS, worker.ModelGate().threads]))
"""


@pytest.mark.parametrize("first, env, expected", [
    ("", {"OMP_NUM_THREADS": "3"}, [True, "1", 3, 3]),  # the count torch would have chosen
    ("", {"MKL_NUM_THREADS": "2"}, [False, "2", None, None]),  # the user's setting is kept (torch not loaded: None)
    ("import torch; torch.set_num_threads(1)", {}, [False, None, None, 1]),  # too late: nothing changes
])
def test_prepare_threads_sets_mkl_to_one_before_torch_only(first, env, expected):
    import json
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("MKL_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PREPARE.format(first=first)], env={**base, **env},
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == expected


def test_physical_cores_counts_each_core_once():
    import os

    from mlmtool.server.worker import physical_cores

    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))
