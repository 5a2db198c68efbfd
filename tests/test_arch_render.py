"""The pictures say what each architecture's attention is (issue 24): ModernBERT's local layers
are labelled on the layer axis (``L2 · local ±2``, ``2 · local ±2``) and the notes (local
layers, grouped-query attention) are written under the overview, the rollout picture and the
heads heatmaps and at the top of ``analysis.md``; BERT's pictures have neither.

Tiny random models (hidden 32, 2 heads): ModernBERT with 3 layers, a ±2 window and every
third layer global (layers 2 and 3 local); EuroBERT with 4 query heads sharing 2 key/value
heads; both with the tiny BERT vocabulary of ``conftest``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import CORPUS

pytestmark = pytest.mark.usefixtures("one_thread")
TEXT = "the cat sat on the mat and the dog ran in the park ."


def _tiny(tok, root, kind, **sizes):
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    from mlmtool.models import load

    config = AutoConfig.for_model(kind, vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                  max_position_embeddings=64, pad_token_id=0, **sizes)
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(config).save_pretrained(root / kind)
    tok.save_pretrained(root / kind)
    return load(str(root / kind))


@pytest.fixture(scope="module")
def models(tiny_bert_dir, tmp_path_factory):
    """``{"modernbert": LoadedModel, "eurobert": LoadedModel}``."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    root = tmp_path_factory.mktemp("arch-render")
    return {"modernbert": _tiny(tok, root, "modernbert", num_hidden_layers=3, num_attention_heads=2,
                                local_attention=4, global_attn_every_n_layers=3),
            "eurobert": _tiny(tok, root, "eurobert", num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2)}


@pytest.fixture(scope="module")
def modern_attention(models):
    from mlmtool.analysis.attention import attention

    return attention(models["modernbert"], TEXT)


def _plain(result):
    """The same result without layer kinds or notes: what a BERT-like model gives."""
    return dataclasses.replace(result, local_window=[], notes=[])


def test_caption_appends_notes_under_the_picture_and_nothing_without_notes(modern_attention):
    from mlmtool.render.diagrams import render_head, with_caption

    img = render_head(modern_attention, 2, 1)
    assert with_caption(img, []) is img
    captioned = np.asarray(with_caption(img, ["one note", "a second, longer note " * 8]))
    assert captioned.shape[0] > img.height and captioned.shape[1] == max(img.width, 420)
    np.testing.assert_array_equal(captioned[:img.height, :img.width], np.asarray(img))


def test_overview_labels_local_layers_and_writes_the_notes(modern_attention):
    from mlmtool.render.diagrams import render_overview, render_overview_svg

    plain = _plain(modern_attention)
    assert render_overview(modern_attention).height > render_overview(plain).height
    svg = render_overview_svg(modern_attention)
    assert ">L1 · global<" in svg and ">L2 · local ±2<" in svg and "sliding-window" in svg
    plain_svg = render_overview_svg(plain)
    assert ">L2<" in plain_svg and "local" not in plain_svg and "•" not in plain_svg


def test_rollout_picture_says_what_it_assumes(modern_attention, tiny_bert):
    from matplotlib.figure import Figure

    from mlmtool.analysis.attention import attention
    from mlmtool.analysis.rollout import attention_rollout
    from mlmtool.render.summary import render_summary, render_summary_svg

    summary = attention_rollout(modern_attention)
    assert any("local layers (2, 3" in n for n in summary.notes)
    bare = dataclasses.replace(summary, notes=[])
    img, img_bare = render_summary(summary), render_summary(bare)
    assert img.height > img_bare.height
    np.testing.assert_array_equal(np.asarray(img)[:img_bare.height, :img_bare.width], np.asarray(img_bare))
    assert "rollout takes the local layers" in render_summary_svg(summary)
    ax = Figure().subplots()
    render_summary(summary, ax=ax)
    assert "rollout takes the local layers" in ax.get_xlabel()
    bert = attention_rollout(attention(tiny_bert, "the cat sat ."))
    assert bert.notes == [] and "•" not in render_summary_svg(bert)
    ax = Figure().subplots()
    render_summary(bert, ax=ax)
    assert ax.get_xlabel() == "input token"


def test_heads_pictures_and_report_name_local_layers(models, tiny_bert, tmp_path):
    from mlmtool.analysis.heads.run import score_heads
    from mlmtool.render.heads_view import (render_head_labels, render_heads_markdown, render_metric_heatmap,
                                           save_heads_report)

    scores = score_heads(models["modernbert"], CORPUS[:4])
    fig = render_metric_heatmap(scores, "next")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["1 · global", "2 · local ±2", "3 · local ±2"]
    assert "sliding-window" in fig.get_supxlabel()
    labels_fig = render_head_labels(scores, scores.labels())
    assert [t.get_text() for t in labels_fig.axes[0].get_yticklabels()][1] == "2 · local ±2"
    md = render_heads_markdown(scores)
    assert "**This model's attention.**" in md and "| L2 · local ±2 |" in md and "L2: local ±2" in md
    assert save_heads_report(scores, tmp_path)[0].name == "analysis.md"

    bert = score_heads(tiny_bert, CORPUS[:4])
    fig = render_metric_heatmap(bert, "next")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1", "2"] and fig.get_supxlabel() == ""
    md = render_heads_markdown(bert)
    assert "This model's attention" not in md and "| L2 |" in md and "local" not in md


def test_grouped_query_attention_is_said_where_heads_are_compared(models):
    from mlmtool.analysis.attention import attention
    from mlmtool.analysis.heads.run import score_heads
    from mlmtool.render.diagrams import render_overview_svg
    from mlmtool.render.heads_view import render_heads_markdown, render_metric_heatmap

    scores = score_heads(models["eurobert"], CORPUS[:4])
    assert scores.layer_labels == []
    assert "4 query heads share 2 key/value heads" in render_heads_markdown(scores)
    fig = render_metric_heatmap(scores, "self")
    assert "share 2 key/value heads" in fig.get_supxlabel().replace("\n   ", " ")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1", "2"]
    assert "share 2 key/value heads" in render_overview_svg(attention(models["eurobert"], TEXT))
