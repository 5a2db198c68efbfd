"""Attention weights and diagrams."""

import numpy as np
import pytest
from PIL import Image

from mlmtool.analysis.attention import attention
from mlmtool.render.diagrams import (
    _palette,
    matrix_layout,
    render_head,
    render_head_svg,
    render_overview,
    save_attention_diagrams,
)


def test_rows_sum_to_one_and_shape(tiny_bert):
    res = attention(tiny_bert, "the cat sat on the mat .")
    n = len(res.tokens)
    assert res.tokens[0] == "[CLS]" and res.tokens[-1] == "[SEP]"
    assert res.attention.shape == (2, 4, n, n)
    np.testing.assert_allclose(res.attention.sum(-1), 1.0, atol=1e-5)
    assert res.special == [True] + [False] * (n - 2) + [True]
    assert res.word_ids[0] is None and res.word_ids[1] == 0


@pytest.mark.parametrize("name", ["result.npz", "result", "result.bin"])
def test_save_writes_exactly_the_path_given_and_loads_back(tiny_bert, tmp_path, name):
    from mlmtool.analysis.attention import AttentionResult

    res = attention(tiny_bert, "the cat sat .")
    path = res.save(tmp_path / name)
    assert path == tmp_path / name and [p.name for p in tmp_path.iterdir()] == [name]
    back = AttentionResult.load(path)
    np.testing.assert_array_equal(back.attention, res.attention)
    assert back.to_dict() == res.to_dict()


def test_batched_attention_equals_single_and_strips_padding(tiny_roberta):
    texts = ["the cat sat .", "the dog ran in the park and the cat sat on the mat ."]
    batch = attention(tiny_roberta, texts, batch_size=2)
    for text, res in zip(texts, batch):
        one = attention(tiny_roberta, text)
        assert res.tokens == one.tokens
        np.testing.assert_allclose(res.attention, one.attention, atol=1e-5)
        np.testing.assert_allclose(res.attention.sum(-1), 1.0, atol=1e-5)
    assert "<s>" == batch[0].tokens[0] and "cat" in batch[0].tokens  # BPE marker stripped


def test_equals_transformers_output_attentions(tiny_bert):
    import torch

    text = "she opened the door ."
    enc = tiny_bert.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        ref = tiny_bert.model(**enc, output_attentions=True).attentions
    res = attention(tiny_bert, text)
    np.testing.assert_allclose(res.attention, torch.stack(ref, 1)[0].numpy(), atol=1e-6)


def _hand_result(weights, tokens):
    from mlmtool.analysis.attention import AttentionResult

    return AttentionResult(text=" ".join(tokens), tokens=tokens, attention=weights,
                           word_ids=[None] * len(tokens), special=[False] * len(tokens), model_name="hand")


def test_cell_colours_follow_weights_lighter_is_higher():
    """A hand-made head: token i attends only to token i+1 (last to itself).

    Every cell of the grid is read at its centre, using the diagram's own geometry, so the
    colour bar (which holds every colour) cannot make the check pass.
    """
    n = 5
    w = np.zeros((1, 2, n, n), dtype=np.float32)
    for i in range(n):
        w[0, 0, i, min(i + 1, n - 1)] = 1.0
    w[0, 1] = 1.0 / n
    tokens = ["a", "b", "c", "d", "e"]
    res = _hand_result(w, tokens)
    lay = matrix_layout(tokens)
    pal = np.array(_palette()).reshape(-1, 3)
    top_colour, bottom_colour = pal[127], pal[0]
    lum = lambda c: 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    assert lum(top_colour) > lum(bottom_colour)  # lighter = higher

    def cells(img):
        rgb = np.asarray(img.convert("RGB")).astype(int)
        centre = lambda k: k * lay.cell + lay.cell // 2
        return np.array([[rgb[lay.top + centre(i), lay.left + centre(j)] for j in range(n)] for i in range(n)])

    grid = cells(render_head(res, 1, 1))
    is_top = (grid == top_colour).all(-1)
    assert sorted(map(tuple, np.argwhere(is_top))) == [(i, min(i + 1, n - 1)) for i in range(n)]
    assert (grid[~is_top] == bottom_colour).all()
    # the uniform head shows the colour of 1/n in every cell, and nowhere the extremes
    mid = pal[int(round(0.2 * 127))]
    assert (cells(render_head(res, 1, 2)) == mid).all()
    # a transposed head moves the light cells with it (the colours follow the weights, not the layout)
    w2 = w.copy()
    w2[0, 0] = w[0, 0].T
    grid_t = cells(render_head(_hand_result(w2, tokens), 1, 1))
    assert sorted(map(tuple, np.argwhere((grid_t == top_colour).all(-1)))) == \
        sorted((min(i + 1, n - 1), i) for i in range(n))


def test_titles_and_range_errors(tiny_bert):
    res = attention(tiny_bert, "the cat sat .")
    svg = render_head_svg(res, 2, 3)
    assert "Layer 2, Head 3" in svg and svg.count("<rect") == 1 + len(res.tokens) ** 2
    with pytest.raises(ValueError):
        render_head(res, 0, 1)
    with pytest.raises(ValueError):
        render_head(res, 3, 1)


def test_save_writes_one_file_per_head_named_from_one(tiny_bert, tmp_path):
    res = attention(tiny_bert, "the cat sat on the mat .")
    paths = save_attention_diagrams(res, tmp_path, "png")
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = sorted([f"Attention_Layer{l}_Head{h}.png" for l in (1, 2) for h in (1, 2, 3, 4)] + ["overview.png"])
    assert names == expected and len(paths) == 2 * 4 + 1
    img = Image.open(tmp_path / "Attention_Layer2_Head4.png")
    n = len(res.tokens)
    assert img.width > n * 10 and img.height > n * 10
    ov = render_overview(res)
    assert ov.width > 4 * n and ov.height > 2 * n
    svg_dir = tmp_path / "svg"
    svg_dir.mkdir()
    save_attention_diagrams(res, svg_dir, "svg")
    assert len(list(svg_dir.glob("Attention_Layer*_Head*.svg"))) == 8 and (svg_dir / "overview.svg").exists()


@pytest.mark.slow
def test_minilm_writes_72_diagrams(minilm, tmp_path):
    res = attention(minilm, "The quick brown fox jumps over the lazy dog.")
    assert res.attention.shape[:2] == (6, 12)
    np.testing.assert_allclose(res.attention.sum(-1), 1.0, atol=1e-5)
    paths = save_attention_diagrams(res, tmp_path)
    assert len(list(tmp_path.glob("Attention_Layer*_Head*.png"))) == 72
    assert (tmp_path / "Attention_Layer6_Head12.png").exists() and not (tmp_path / "Attention_Layer0_Head1.png").exists()
    assert len(paths) == 73


def test_diagram_titles_name_local_layers():
    """ModernBERT-style local layers are named in the head diagram's title (issue 24)."""
    import numpy as np

    from mlmtool.analysis.attention import AttentionResult
    from mlmtool.render.diagrams import _title

    att = np.full((2, 1, 3, 3), 1 / 3, dtype=np.float32)
    res = AttentionResult("a b", ["[CLS]", "a", "[SEP]"], att, [None, 0, None], [True, False, True], "m",
                          local_window=[None, 64])
    assert _title(res, 1, 1) == "Layer 1 · global, Head 1 (m)"
    assert _title(res, 2, 1) == "Layer 2 · local ±64, Head 1 (m)"
    plain = AttentionResult("a b", ["[CLS]", "a", "[SEP]"], att, [None, 0, None], [True, False, True], "m")
    assert _title(plain, 2, 1) == "Layer 2, Head 1 (m)"
