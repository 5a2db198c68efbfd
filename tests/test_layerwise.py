"""Layer-wise predictions (logit lens at the mask): parity with predict and HF, identity layers, CLI."""

from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest

from mlmtool.analysis.layerwise import layerwise_predictions
from mlmtool.analysis.predict import predict
from mlmtool.errors import NoMLMHeadError


@pytest.mark.parametrize("fixture,text", [
    ("tiny_bert", "the [MASK] sat on the [MASK] ."),
    ("tiny_roberta", "the cat [MASK] on the mat ."),
])
def test_last_layer_equals_predict(request, fixture, text):
    lm = request.getfixturevalue(fixture)
    res = layerwise_predictions(lm, text, top_k=4)
    pred = predict(lm, text, top_k=4, max_pieces=1, independent=True)  # piece-level, as the HF pipeline
    assert res.num_layers == lm.num_layers and len(res.masks) == len(pred.masks)
    for mask, pm in zip(res.masks, pred.masks):
        assert len(mask.by_layer) == lm.num_layers + 1
        assert [l.layer for l in mask.by_layer] == list(range(lm.num_layers + 1))
        last = mask.by_layer[-1]
        assert [t.token for t in last.top] == [c.token for c in pm.candidates]
        np.testing.assert_allclose([t.probability for t in last.top], [c.score for c in pm.candidates], atol=1e-6)
        assert mask.position == pm.position and mask.index == pm.index
        assert mask.final_token == pm.candidates[0].token and mask.final_token_id == pm.candidates[0].token_id
        assert last.final_rank == 1 and abs(last.final_probability - pm.candidates[0].score) < 1e-6


def test_each_layer_equals_the_head_on_hf_hidden_states(tiny_bert):
    """Every layer, computed by hand: HF hidden states -> the model's own ``cls`` head -> softmax."""
    import torch

    text = "she opened the [MASK] ."
    enc = tiny_bert.tokenizer(text, return_tensors="pt")
    pos = enc["input_ids"][0].tolist().index(tiny_bert.mask_token_id)
    with torch.no_grad():
        hidden = tiny_bert.model.bert(**enc, output_hidden_states=True).hidden_states
        probs = [tiny_bert.model.cls(h[0, pos]).softmax(-1) for h in hidden]  # L+1 x [V]
    res = layerwise_predictions(tiny_bert, text, top_k=3)
    final = int(probs[-1].argmax())
    for layer, p in zip(res.masks[0].by_layer, probs):
        top_p, top_i = p.topk(3)
        assert [t.token for t in layer.top] == [tiny_bert.tokenizer.decode([i]) for i in top_i.tolist()]
        np.testing.assert_allclose([t.probability for t in layer.top], top_p.tolist(), atol=1e-6)
        assert layer.final_rank == 1 + int((p > p[final]).sum())
        assert abs(layer.final_probability - float(p[final])) < 1e-6
        # the rank agrees with the top list whenever the final piece is in it
        tokens = [t.token for t in layer.top]
        if res.masks[0].final_token in tokens:
            assert layer.final_rank == tokens.index(res.masks[0].final_token) + 1


def test_an_identity_layer_repeats_the_previous_layers_top_k(tiny_bert_dir):
    from mlmtool.models import load

    text = "the dog ran in the [MASK] ."
    lm = load(str(tiny_bert_dir))  # a private copy: its layer 2 is changed below
    before = layerwise_predictions(lm, text, top_k=5).masks[0].by_layer
    assert [t.probability for t in before[1].top] != [t.probability for t in before[2].top]  # control
    # layer 2 becomes exactly the identity; HF still records its output as hidden state 2
    lm.model.bert.encoder.layer[1].forward = types.MethodType(lambda self, hidden_states, *a, **k: hidden_states,
                                                              lm.model.bert.encoder.layer[1])
    rows = layerwise_predictions(lm, text, top_k=5).masks[0].by_layer
    assert len(rows) == 3
    assert [t.token for t in rows[1].top] == [t.token for t in rows[2].top]
    np.testing.assert_allclose([t.probability for t in rows[1].top], [t.probability for t in rows[2].top], atol=1e-7)
    assert rows[2].final_rank == 1 and rows[1].final_rank == 1
    # layer 1 is untouched by the change
    assert [t.token for t in rows[1].top] == [t.token for t in before[1].top]


def test_several_texts_in_input_order_and_json(tiny_bert):
    texts = ["the [MASK] ran .", "i drink a cup of [MASK] every morning ."]
    many = layerwise_predictions(tiny_bert, texts, top_k=2, batch_size=2)
    for text, res in zip(texts, many):
        one = layerwise_predictions(tiny_bert, text, top_k=2)
        assert res.text == text
        assert [t.token for t in res.masks[0].by_layer[0].top] == [t.token for t in one.masks[0].by_layer[0].top]
    d = json.loads(json.dumps(many[1].to_dict()))
    row = d["masks"][0]["by_layer"][1]
    assert set(row) == {"layer", "top", "final_rank", "final_probability"} and row["layer"] == 1
    assert set(row["top"][0]) == {"token", "probability"} and len(row["top"]) == 2


def test_model_without_mlm_head_is_one_clear_error(tiny_bert):
    headless = dataclasses.replace(tiny_bert, has_mlm_head=False)
    with pytest.raises(NoMLMHeadError) as info:
        layerwise_predictions(headless, "the [MASK] sat .")
    assert "masked-LM head" in str(info.value) and "\n" not in str(info.value)


def test_layerwise_figure_draws_the_data(tiny_bert, tmp_path):
    from mlmtool.render.layerwise import render_layerwise

    res = layerwise_predictions(tiny_bert, "the [MASK] sat on the [MASK] .", top_k=3)
    fig = render_layerwise(res)
    curves = [ax for ax in fig.axes if ax.get_xlabel().startswith("layer")]
    grids = [ax for ax in fig.axes if ax.images]
    assert len(curves) == 2 and len(grids) == 2  # one pair of panels per mask
    for m, curve, grid in zip(res.masks, curves, grids):
        probs = curve.lines[0].get_ydata()
        np.testing.assert_allclose(probs, [r.final_probability for r in m.by_layer])
        cells = grid.images[0].get_array()
        assert cells.shape == (tiny_bert.num_layers + 1, 3)
        np.testing.assert_allclose(cells, [[t.probability for t in r.top] for r in m.by_layer])
        texts = [t.get_text().split("\n")[0] for t in grid.texts]
        assert texts[:3] == [t.token.strip() for t in m.by_layer[0].top]
    rank_axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("rank")]
    np.testing.assert_array_equal(rank_axes[0].lines[0].get_ydata(), [r.final_rank for r in res.masks[0].by_layer])
    fig.savefig(tmp_path / "layers.png")
    assert (tmp_path / "layers.png").read_bytes()[:4] == b"\x89PNG"
    one = render_layerwise(res, mask=2)
    assert len([ax for ax in one.axes if ax.images]) == 1
    with pytest.raises(ValueError):
        render_layerwise(res, mask=3)


# ---- the command line: mlmtool predict --by-layer ----

def _predict(runner, *args):
    from mlmtool.cli import cli

    return runner.invoke(cli, ["predict", *args])


def test_cli_by_layer_table_json_and_png(runner, tiny_bert, tiny_bert_dir, tmp_path):
    text = "the [MASK] sat on the mat ."
    ref = layerwise_predictions(tiny_bert, text, top_k=3)
    r = _predict(runner, "-m", str(tiny_bert_dir), text, "--by-layer", "-k", "3")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    final = ref.masks[0].final_token.strip()
    assert f"final '{final}'" in r.stdout and "Layer" in r.stdout
    for row in ref.masks[0].by_layer:  # one table row per layer: its label, pieces, rank and probability
        label = f"{row.layer} (emb)" if row.layer == 0 else str(row.layer)
        hits = [l for l in lines if l.strip("│ ").startswith(label + " ") and f"{row.final_probability:.4f}" in l]
        assert len(hits) == 1, (label, r.stdout)
        assert f"{row.top[0].token.strip()} {row.top[0].probability:.3f}" in hits[0]
        assert f" {row.final_rank} " in hits[0]
    r = _predict(runner, "-m", str(tiny_bert_dir), text, "--by-layer", "-k", "3", "--json")
    data = json.loads(r.stdout)
    assert data == json.loads(json.dumps(ref.to_dict()))
    assert [row["layer"] for row in data["masks"][0]["by_layer"]] == [0, 1, 2]
    png = tmp_path / "layers.png"
    r = _predict(runner, "-m", str(tiny_bert_dir), text, "--by-layer", "--png", str(png))
    assert r.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    before = png.read_bytes()
    r = _predict(runner, "-m", str(tiny_bert_dir), text, "--by-layer", "--png", str(png))
    assert r.exit_code == 2 and "--overwrite" in r.output and png.read_bytes() == before


def test_cli_by_layer_reads_sentences_by_the_grammar(runner, tiny_bert_dir, tmp_path):
    (tmp_path / "s.txt").write_text("the [MASK] ran .\ni like [MASK] .\n", encoding="utf-8")
    r = _predict(runner, "-m", str(tiny_bert_dir), "-i", str(tmp_path / "s.txt"), "--by-layer", "--json")
    assert r.exit_code == 0, r.output
    assert [d["text"] for d in json.loads(r.stdout)] == ["the [MASK] ran .", "i like [MASK] ."]
    r = _predict(runner, "-m", str(tiny_bert_dir), "-i", str(tmp_path / "s.txt"), "--by-layer", "--png", "x.png")
    assert r.exit_code == 2 and "one sentence" in r.output


@pytest.mark.parametrize("args,message", [
    (["the [MASK] .", "--png", "x.png"], "add --by-layer"),
    (["the [MASK] .", "--by-layer", "--html", "x.html"], "does not take --html"),
    (["the cat .", "--by-layer"], "no [MASK] in the text"),
])
def test_cli_by_layer_bad_input(runner, tiny_bert_dir, args, message):
    r = _predict(runner, "-m", str(tiny_bert_dir), *args)
    assert r.exit_code == 2 and message in r.output


def test_cli_by_layer_without_mlm_head_is_one_line(runner, tiny_encoder_dir):
    r = _predict(runner, "-m", str(tiny_encoder_dir), "the [MASK] sat .", "--by-layer")
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and r.output.startswith("Error: --by-layer applies the masked-LM head")
    assert "Traceback" not in r.output
