"""Chinese and Japanese as first-class as English (issue 31).

Glyphs: two sentences that differ in one character give different label pixels in the Pillow
head diagrams and in matplotlib figures, and each character's glyph is not the font's
``.notdef`` box. Words: an unspaced Chinese sentence of five jieba words gives five words in
embed, on a tiny XLM-R-style model (SentencePiece Unigram with ``▁``, trained here) and on
``multi-mini``; Japanese gets MeCab's words; pre-split (treebank) words are kept.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

PAIRS = {"zh": ("猫在沙发上睡觉", "狗在沙发上睡觉"), "ja": ("猫がソファで寝ている", "犬がソファで寝ている")}
ZH_WORDS = ["猫", "在", "沙发", "上", "睡觉"]  # jieba's words of PAIRS["zh"][0]
UNASSIGNED = "\u0378"  # in no font: drawn as the font's .notdef glyph


def _chars(sentence: str) -> list[str]:
    return ["<s>", *sentence, "</s>"]


@pytest.mark.parametrize("lang", sorted(PAIRS))
def test_pillow_labels_differ_by_one_character(lang):
    from mlmtool.render.diagrams import matrix_image, matrix_layout

    images = []
    for sentence in PAIRS[lang]:
        tokens = _chars(sentence)
        weights = np.full((len(tokens), len(tokens)), 1 / len(tokens))
        images.append(np.asarray(matrix_image(weights, "t", matrix_layout(tokens))))
    assert images[0].shape == images[1].shape
    assert (images[0] != images[1]).any()


def _glyph(text: str, font) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(canvas).text((8, 8), text, font=font, fill=0)
    return np.asarray(canvas)


@pytest.mark.parametrize("lang", sorted(PAIRS))
def test_no_character_is_the_missing_glyph_box(lang):
    from mlmtool.render.fonts import pil_font

    for ch in set("".join(PAIRS[lang])):
        font = pil_font(ch, 32)
        assert not np.array_equal(_glyph(ch, font), _glyph(UNASSIGNED, font)), ch


def _figure_pixels(tokens: list[str]) -> np.ndarray:
    from matplotlib.figure import Figure

    from mlmtool.analysis.rollout import AttentionSummary
    from mlmtool.render.summary import render_summary

    n = len(tokens)
    summary = AttentionSummary(method="rollout", text="", tokens=tokens, matrix=np.eye(n), layers=(1, 2),
                               special=[False] * n, model_name="tiny")
    fig = Figure(figsize=(4, 4), dpi=80)
    render_summary(summary, ax=fig.subplots())
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


@pytest.mark.parametrize("lang", sorted(PAIRS))
def test_matplotlib_labels_have_glyphs_and_differ(lang, recwarn):
    a, b = (_figure_pixels(_chars(s)) for s in PAIRS[lang])
    assert (a != b).any()
    assert not [w for w in recwarn if "missing from font" in str(w.message)]
    box = _figure_pixels(["<s>", *([UNASSIGNED] * len(PAIRS[lang][0])), "</s>"])
    assert (a != box).any()


def test_css_and_svg_name_the_one_font_stack():
    from importlib.resources import files

    from mlmtool.render.fonts import CSS_MONO, CSS_SANS

    css = files("mlmtool").joinpath("templates/view.css").read_text(encoding="utf-8")
    assert CSS_SANS in css and CSS_MONO in css and '"Noto Sans CJK SC"' in CSS_SANS


# ---- words ---------------------------------------------------------------------------------

CORPUS = ["猫在沙发上睡觉", "狗在沙发上睡觉", "我们在北京学习中文", "他喜欢喝茶", "今天天气很好",
          "猫がソファで寝ている", "犬がソファで寝ている", "東京に住んでいます", "日本語を勉強します",
          "the cat sleeps on the sofa"] * 3


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory):
    """A tiny XLM-R: SentencePiece Unigram (``▁`` word starts) trained here, 2 layers."""
    import torch
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaTokenizer

    from mlmtool.models import load

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(CORPUS, vocab_size=120, unk_token="<unk>", show_progress=False,
                           special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok = XLMRobertaTokenizer(vocab=[tuple(v) for v in json.loads(sp.to_str())["model"]["vocab"]])
    torch.manual_seed(0)
    model = XLMRobertaForMaskedLM(XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=130, type_vocab_size=1, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    path = tmp_path_factory.mktemp("tiny-xlmr")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return load(str(path))


def test_tokenizer_alone_sees_one_word(tiny_xlmr):
    enc = tiny_xlmr.tokenizer([PAIRS["zh"][0]])
    assert len({w for w in enc.word_ids(0) if w is not None}) == 1  # what issue 31 is about


def test_embed_gives_the_segmenters_words_zh(tiny_xlmr):
    from mlmtool.analysis.embed import word_vectors

    vectors = word_vectors(tiny_xlmr, [PAIRS["zh"][0], "the cat sleeps"])
    assert vectors.words == ZH_WORDS + ["the", "cat", "sleeps"]


def test_embed_gives_mecabs_words_ja(tiny_xlmr):
    import fugashi

    from mlmtool.analysis.embed import word_vectors

    sentence = PAIRS["ja"][0]
    mecab = [w.surface for w in fugashi.Tagger()(sentence)]
    words = word_vectors(tiny_xlmr, [sentence]).words
    assert "".join(words) == sentence and len(words) <= len(mecab)
    assert all(any(m.startswith(w) or w.startswith(m) for m in mecab) for w in words)


def test_straddling_piece_joins_the_first_word():
    from mlmtool.tokens import split_cjk_words

    # pieces 猫 | 在沙 | 发 over jieba's 猫 / 在 / 沙发: 在沙 belongs to 在, 发 to 沙发
    assert split_cjk_words([None, 0, 0, 0, None], ["", "猫", "在沙", "发", ""]) == [None, 0, 1, 2, None]
    assert split_cjk_words([None, 0, 1, None], ["", "play", "ing", ""]) == [None, 0, 1, None]


def test_pre_split_words_are_kept(tiny_xlmr):
    from mlmtool.tokens import encode_words

    _, word_ids = encode_words(tiny_xlmr, [["猫在沙发上", "睡觉"]])
    assert {w for w in word_ids[0] if w is not None} == {0, 1}


@pytest.mark.slow
def test_embed_words_on_multi_mini():
    from mlmtool.analysis.embed import word_vectors
    from mlmtool.models import load

    words = word_vectors(load("multi-mini"), [PAIRS["zh"][0]]).words
    assert words == ZH_WORDS
