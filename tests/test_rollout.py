"""Attention rollout and attention flow (Abnar & Zuidema 2020) against hand computation and networkx."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlmtool.analysis.attention import AttentionResult
from mlmtool.analysis.rollout import (
    FLOW_SCALE,
    MAX_FLOW_TOKENS,
    attention_flow,
    attention_rollout,
    flow_matrix,
    residual_attention,
    rollout_matrix,
)
from mlmtool.errors import MlmtoolError


def hand_result(weights: np.ndarray, tokens=None) -> AttentionResult:
    n = weights.shape[-1]
    tokens = tokens or [f"t{i}" for i in range(n)]
    return AttentionResult(text=" ".join(tokens), tokens=tokens, attention=weights.astype(np.float32),
                           word_ids=list(range(n)), special=[False] * n, model_name="hand")


def random_attention(layers, heads, n, seed, zeros=0.0) -> np.ndarray:
    """Row-stochastic ``[layers, heads, n, n]``; ``zeros`` = share of weights set to exactly 0."""
    rng = np.random.default_rng(seed)
    att = np.exp(rng.normal(size=(layers, heads, n, n)) * 1.5)
    if zeros:
        att[rng.random(att.shape) < zeros] = 0.0
        att[..., np.arange(n), np.arange(n)] += 1e-3  # every row keeps some weight
    return att / att.sum(-1, keepdims=True)


def networkx_flow(aug: np.ndarray) -> np.ndarray:
    """The straightforward reference: the whole layered graph, one max-flow per token pair."""
    nx = pytest.importorskip("networkx")
    L, n, _ = aug.shape
    graph = nx.DiGraph()
    for l in range(L):
        for i in range(n):
            for j in range(n):
                graph.add_edge((l + 1, i), (l, j), capacity=float(aug[l, i, j]))
    return np.array([[nx.maximum_flow_value(graph, (L, u), (0, v)) for v in range(n)] for u in range(n)])


def test_rollout_equals_the_hand_computed_product():
    # layer 1: head 1 attends to token 0, head 2 to the token itself; layer 2: both heads to token 2
    att = np.zeros((2, 2, 3, 3))
    att[0, 0, :, 0] = 1.0
    att[0, 1] = np.eye(3)
    att[1, :, :, 2] = 1.0
    # by hand: A1 = 0.5 * mean(W1) + 0.5 * I = 0.5 * (0.5 * e0-columns + 0.5 * I) + 0.5 * I
    a1 = np.array([[1.0, 0, 0], [0.25, 0.75, 0], [0.25, 0, 0.75]])
    a2 = np.array([[0.5, 0, 0.5], [0, 0.5, 0.5], [0, 0, 1.0]])
    np.testing.assert_allclose(residual_attention(att), [a1, a2], atol=1e-12)
    # R = A2 @ A1, written out
    expected = np.array([
        [0.5 * 1.0 + 0.5 * 0.25, 0.0, 0.5 * 0.75],
        [0.5 * 0.25 + 0.5 * 0.25, 0.5 * 0.75, 0.5 * 0.75],
        [0.25, 0.0, 0.75],
    ])
    res = attention_rollout(hand_result(att))
    np.testing.assert_allclose(res.matrix, expected, atol=1e-7)
    np.testing.assert_allclose(res.matrix.sum(1), 1.0, atol=1e-7)
    assert res.layers == (1, 2) and res.method == "rollout" and res.raw is None
    # one layer alone is that layer's residual matrix; layers 2-2 skip layer 1
    np.testing.assert_allclose(attention_rollout(hand_result(att), layers=(2, 2)).matrix, a2, atol=1e-7)
    np.testing.assert_allclose(attention_rollout(hand_result(att), layers=(1, 1)).matrix, a1, atol=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_rollout_rows_sum_to_one_and_match_the_paper_code(seed):
    att = random_attention(5, 3, 7, seed)
    res = attention_rollout(hand_result(att), layers=(2, 4))
    np.testing.assert_allclose(res.matrix.sum(1), 1.0, atol=1e-9)
    assert (res.matrix >= 0).all()
    # compute_joint_attention of the paper's code: (W + I) / row sums, then aug[i] @ joint[i-1]
    mean = att[1:4].mean(1)
    aug = mean + np.eye(7)
    aug /= aug.sum(-1, keepdims=True)
    joint = aug[0]
    for layer in aug[1:]:
        joint = layer @ joint
    np.testing.assert_allclose(res.matrix, joint, atol=1e-9)


@pytest.mark.parametrize("layers,n,heads,zeros,seed", [
    (1, 4, 2, 0.0, 0), (2, 3, 1, 0.0, 1), (3, 5, 2, 0.0, 2), (4, 4, 3, 0.5, 3), (3, 6, 2, 0.7, 4), (5, 5, 2, 0.3, 5),
    (4, 10, 2, 0.0, 6), (3, 11, 2, 0.6, 7),
])
def test_flow_equals_networkx_one_max_flow_per_pair(layers, n, heads, zeros, seed):
    att = random_attention(layers, heads, n, seed, zeros)
    aug = residual_attention(att)
    expected = networkx_flow(aug)
    got = attention_flow(hand_result(att))
    # integer capacities: each edge off by <= 0.5 / FLOW_SCALE, a cut has < n * layers edges
    tol = n * layers / FLOW_SCALE
    np.testing.assert_allclose(got.raw, expected, atol=tol)
    # the pruned first pass (settling pairs at their bound) changes nothing, however hard it prunes
    for prune_to in (0, 1, 2, 8):
        np.testing.assert_allclose(flow_matrix(aug, prune_to=prune_to), expected, atol=tol)
    np.testing.assert_array_equal(flow_matrix(aug, prune_to=1), flow_matrix(aug, prune_to=0))
    # several calls per output token (few copies per graph) give the same values
    np.testing.assert_array_equal(flow_matrix(aug, max_edges=1), flow_matrix(aug))
    # rows normalised as the paper's code does (flow_values[u] /= flow_values[u].sum())
    np.testing.assert_allclose(got.matrix, expected / expected.sum(1, keepdims=True), atol=10 * tol)
    np.testing.assert_allclose(got.matrix.sum(1), 1.0, atol=1e-9)
    # a flow never exceeds what the source can send (1) nor the one-layer capacities
    assert (got.raw <= 1 + tol).all()


def test_no_flow_where_rollout_is_zero():
    # each token attends only to the token before it (token 0 to itself): after 3 layers token i
    # can only hold tokens i-3..i, so rollout has zeros and flow must have exactly the same ones
    n, L = 7, 3
    att = np.zeros((L, 2, n, n))
    for i in range(n):
        att[:, :, i, max(i - 1, 0)] = 1.0
    res = hand_result(att)
    roll = attention_rollout(res).matrix
    flow = attention_flow(res).raw
    assert (roll == 0).sum() > n  # the test has something to test
    assert (flow[roll == 0] == 0).all()
    assert (flow[roll > 0] > 0).all()
    np.testing.assert_allclose(flow, networkx_flow(residual_attention(att)), atol=n * L / FLOW_SCALE)


def test_flow_on_a_hand_made_bottleneck():
    """Two layers of one token pair: the flow is the smaller of the two capacities, rollout their product."""
    att = np.zeros((2, 1, 2, 2))
    att[0, 0] = [[1.0, 0.0], [1.0, 0.0]]  # layer 1: both tokens attend to token 0
    att[1, 0] = [[0.0, 1.0], [0.0, 1.0]]  # layer 2: both attend to token 1
    res = hand_result(att)
    # A1 = [[1, 0], [.5, .5]], A2 = [[.5, .5], [0, 1]]; token 0 -> token 1: via (1,1) only: min(.5, .5)
    flow = attention_flow(res, normalize=False).raw
    np.testing.assert_allclose(flow, [[1.0, 0.5], [0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(attention_rollout(res).matrix, [[0.75, 0.25], [0.5, 0.5]], atol=1e-7)


def test_layer_range_and_length_errors():
    res = hand_result(random_attention(3, 2, 4, 0))
    for bad in [(0, 2), (2, 4), (3, 2)]:
        with pytest.raises(MlmtoolError) as info:
            attention_rollout(res, layers=bad)
        assert info.value.param == "layers" and "\n" not in str(info.value)
    with pytest.raises(MlmtoolError, match="outside the model: its layer numbers run from 1 to 3"):
        attention_flow(res, layers=(1, 9))
    long = hand_result(random_attention(1, 1, MAX_FLOW_TOKENS + 1, 0))
    with pytest.raises(MlmtoolError, match=f"at most {MAX_FLOW_TOKENS} tokens") as info:
        attention_flow(long)
    assert "rollout" in str(info.value)
    assert attention_flow(long, max_tokens=None).matrix.shape == (MAX_FLOW_TOKENS + 1,) * 2


def test_summary_to_dict_and_save(tmp_path):
    res = hand_result(random_attention(2, 2, 4, 1), tokens=["[CLS]", "a", "b", "[SEP]"])
    flow = attention_flow(res, layers=(2, 2))
    d = flow.to_dict()
    assert d["method"] == "flow" and d["layers"] == [2, 2] and d["tokens"][0] == "[CLS]"
    assert np.allclose(d["matrix"], flow.matrix) and np.allclose(d["raw"], flow.raw)
    back = json.loads(flow.save(tmp_path / "f.json").read_text(encoding="utf-8"))
    assert back == json.loads(json.dumps(d))
    assert "raw" not in attention_rollout(res).to_dict()
    assert flow.title == "Attention flow, layer 2 (hand)"


def test_rollout_of_a_real_forward_pass(tiny_bert):
    import torch

    from mlmtool.analysis.attention import attention

    text = "the cat sat on the mat ."
    enc = tiny_bert.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        ref = torch.stack(tiny_bert.model(**enc, output_attentions=True).attentions, 1)[0].double().numpy()
    res = attention_rollout(attention(tiny_bert, text))
    n = ref.shape[-1]
    a = [0.5 * ref[l].mean(0) + 0.5 * np.eye(n) for l in range(ref.shape[0])]
    a = [m / m.sum(-1, keepdims=True) for m in a]
    np.testing.assert_allclose(res.matrix, a[1] @ a[0], atol=1e-5)
    assert res.tokens[0] == "[CLS]" and res.model_name


def test_rollout_matrix_of_a_single_layer_is_itself():
    aug = residual_attention(random_attention(1, 2, 3, 9))
    np.testing.assert_allclose(rollout_matrix(aug), aug[0])


def test_summary_heatmap_cells_are_the_matrix_in_the_head_diagram_style(tmp_path):
    from mlmtool.render.diagrams import _levels, _palette, matrix_layout, render_head
    from mlmtool.render.summary import render_summary, render_summary_svg, save_summary

    tokens = ["[CLS]", "the", "cat", "sat", "[SEP]"]
    res = hand_result(random_attention(3, 2, 5, 7), tokens=tokens)
    summary = attention_rollout(res, layers=(2, 3))
    img = render_summary(summary)
    lay = matrix_layout(tokens)
    rgb = np.asarray(img.convert("RGB")).astype(int)
    pal = np.array(_palette()).reshape(-1, 3)
    centre = lambda k: k * lay.cell + lay.cell // 2
    got = np.array([[rgb[lay.top + centre(i), lay.left + centre(j)] for j in range(5)] for i in range(5)])
    np.testing.assert_array_equal(got, pal[_levels(summary.matrix)])
    # same canvas as a head diagram of the same tokens (labels, colour bar, margins)
    assert img.size == render_head(res, 1, 1).size
    svg = render_summary_svg(summary)
    assert "Attention rollout, layers 2-3 (hand)" in svg and svg.count("<rect") == 1 + 25
    flow = attention_flow(res)
    assert save_summary(flow, tmp_path, "png").name == "flow.png"
    assert (tmp_path / "flow.png").read_bytes()[:4] == b"\x89PNG"
    assert save_summary(summary, tmp_path, "svg").read_text(encoding="utf-8").startswith("<svg")


def test_summary_draws_into_a_matplotlib_axes_and_returns_its_figure():
    from matplotlib.figure import Figure

    from mlmtool.render.summary import render_summary

    tokens = ["[CLS]", "the", "cat", "[SEP]"]
    summary = attention_rollout(hand_result(random_attention(2, 2, 4, 3), tokens=tokens))
    fig = Figure()
    ax, other = fig.subplots(1, 2)
    assert render_summary(summary, ax=ax) is fig
    image = ax.get_images()[0]
    np.testing.assert_allclose(image.get_array(), summary.matrix)
    assert image.get_clim() == (0.0, 1.0) and ax.get_title() == summary.title
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert not other.get_images()  # only the axes given is drawn on


# ---- the command line: mlmtool attention --summary ----

def _cli(runner, *args):
    from mlmtool.cli import cli

    return runner.invoke(cli, ["attention", *args])


def test_cli_summary_writes_the_heatmap_of_the_library_result(runner, tiny_bert, tiny_bert_dir, tmp_path):
    from PIL import Image

    from mlmtool.analysis.attention import attention
    from mlmtool.render.summary import render_summary

    text = "the cat sat on the mat ."
    r = _cli(runner, "-m", str(tiny_bert_dir), text, "--summary", "rollout", "-o", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rollout.png"]
    expected = np.asarray(render_summary(attention_rollout(attention(tiny_bert, text))).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "rollout.png").convert("RGB")), expected)
    # again: the file is kept unless --overwrite
    before = (tmp_path / "out" / "rollout.png").read_bytes()
    r = _cli(runner, "-m", str(tiny_bert_dir), "a dog .", "--summary", "rollout", "-o", str(tmp_path / "out"))
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert (tmp_path / "out" / "rollout.png").read_bytes() == before
    r = _cli(runner, "-m", str(tiny_bert_dir), "a dog .", "--summary", "flow", "-o", str(tmp_path / "out"), "-f", "svg")
    assert r.exit_code == 0 and (tmp_path / "out" / "flow.svg").exists()


def test_cli_summary_json_and_layers(runner, tiny_bert, tiny_bert_dir, tmp_path):
    from mlmtool.analysis.attention import attention

    text = "she opened the door ."
    r = _cli(runner, "-m", str(tiny_bert_dir), text, "--summary", "flow", "--json", "--layers", "2-2")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    ref = attention_flow(attention(tiny_bert, text), layers=(2, 2))
    assert data["method"] == "flow" and data["layers"] == [2, 2] and data["tokens"] == ref.tokens
    np.testing.assert_allclose(data["matrix"], ref.matrix, atol=1e-9)
    assert not (tmp_path / "attention").exists()  # --json alone writes no files
    r = _cli(runner, "-m", str(tiny_bert_dir), text, "--summary", "rollout", "--json", "--layers", "1")
    np.testing.assert_allclose(json.loads(r.stdout)["matrix"],
                               attention_rollout(attention(tiny_bert, text), layers=(1, 1)).matrix, atol=1e-9)
    # without --summary, --json prints every head's weights
    r = _cli(runner, "-m", str(tiny_bert_dir), text, "--json")
    assert np.asarray(json.loads(r.stdout)["attention"]).shape[:2] == (2, 4)


@pytest.mark.parametrize("args,message", [
    (["--summary", "rollout", "--layers", "0-2"], "Error: --layers 0-2 are outside the model: its layer numbers run from 1 to 2"),
    (["--summary", "flow", "--layers", "1-3"], "Error: --layers 1-3 are outside the model: its layer numbers run from 1 to 2"),
    (["--summary", "rollout", "--layers", "2-1"], "Error: --layers 2-1: the first layer is after the last"),
    (["--summary", "rollout", "--layers", "one"], "Error: --layers must be a range counted from 1, like 3-6"),
])
def test_cli_bad_layers_are_one_line(runner, tiny_bert_dir, args, message):
    r = _cli(runner, "-m", str(tiny_bert_dir), "the cat .", *args)
    assert r.exit_code == 2
    assert r.output.startswith(message) and r.output.count("\n") == 1, r.output


def test_cli_flow_refuses_texts_over_the_limit(runner, tiny_bert_dir, monkeypatch):
    import mlmtool.analysis.rollout as rollout

    monkeypatch.setattr(rollout, "MAX_FLOW_TOKENS", 6)  # the tiny model's texts are short
    r = _cli(runner, "-m", str(tiny_bert_dir), "the cat sat on the mat .", "--summary", "flow")
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert r.output.startswith("Error: --summary flow takes at most 6 tokens and this text has 9")
    assert "--summary rollout" in r.output
    r = _cli(runner, "-m", str(tiny_bert_dir), "the cat sat on the mat .", "--summary", "rollout", "--json")
    assert r.exit_code == 0  # rollout has no limit


def test_cli_layers_needs_summary_and_old_out_still_works(runner, tiny_bert_dir, tmp_path):
    r = _cli(runner, "-m", str(tiny_bert_dir), "the cat .", "--layers", "1-2")
    assert r.exit_code == 2 and "--summary" in r.output
    r = _cli(runner, "-m", str(tiny_bert_dir), "the cat .", "--out", str(tmp_path / "old"))
    assert r.exit_code == 0 and "--out is now -o/--output" in r.stderr
    assert len(list((tmp_path / "old").glob("Attention_Layer*_Head*.png"))) == 8
