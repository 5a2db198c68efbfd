"""Whole-word and joint fill (mlmtool.analysis.fill).

* a tiny BERT with hand-set weights, where the answer is a word of two pieces that no
  piece-level fill can give, finds it and ranks it above every one-piece word, with the
  PLL-word-l2r score a hand-written HF loop gives;
* joint fill of two masks equals brute-force enumeration of every pair on a tiny vocabulary;
* whole words never open with a continuation piece, are kept in the tokenizer's own
  segmentation only, and no printed sentence ever holds a mask token.
"""

from __future__ import annotations

import json

import pytest
import torch

from mlmtool.analysis.fill import fill_words
from mlmtool.cli import cli

TWO_PIECE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "sat", ".", "cat", "dog", "a", "on",
                   "tooth", "brush", "##paste", "##s"]


@pytest.fixture(scope="module")
def two_piece_lm(tmp_path_factory):
    """A 1-layer BERT whose weights are set by hand (hidden 8, one head, uniform attention).

    Embeddings: [MASK] = e0 - e4, "tooth" = e1 - e5, every other token 0 (every vector sums
    to 0, so the LayerNorms, made linear by a huge epsilon and a matching weight, change
    nothing). The attention is uniform (query = key = 0) and its value copies e0/e4 to
    e2/e6 and e1/e5 to e3/e7, so at every position e2 holds the share of masks in the
    sentence and e3 the share of "tooth". The head reads them:
    logit(tooth) = 150 (share of masks - 0.22), logit(##paste) = 150 share of tooth - 5,
    logit(cat) = 3, other words 0, special tokens -10.

    So "the [MASK] sat ." with one mask (share 1/6) gives "cat" (p ≈ 0.6) and no "tooth";
    with two masks (share 2/7) the first piece is "tooth" (p ≈ 1), and after it "##paste"
    (p ≈ 1): "toothpaste" is the answer, but only a search over two pieces can find it.
    """
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    from mlmtool.models import load

    path = tmp_path_factory.mktemp("two-piece")
    (path / "vocab.txt").write_text("\n".join(TWO_PIECE_VOCAB) + "\n", encoding="utf-8")
    tok = BertTokenizerFast.from_pretrained(str(path), do_lower_case=True)
    config = BertConfig(vocab_size=len(TWO_PIECE_VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                        intermediate_size=4, max_position_embeddings=32, type_vocab_size=1, layer_norm_eps=1e8,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, tie_word_embeddings=False)
    model = BertForMaskedLM(config)
    ids = {t: i for i, t in enumerate(TWO_PIECE_VOCAB)}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for ln in [model.bert.embeddings.LayerNorm, model.bert.encoder.layer[0].attention.output.LayerNorm,
                   model.bert.encoder.layer[0].output.LayerNorm, model.cls.predictions.transform.LayerNorm]:
            ln.weight.fill_(1e4)  # (x - mean) / sqrt(var + 1e8) * 1e4 = x - mean
        emb = model.bert.embeddings.word_embeddings.weight
        emb[ids["[MASK]"], 0], emb[ids["[MASK]"], 4] = 1.0, -1.0
        emb[ids["tooth"], 1], emb[ids["tooth"], 5] = 1.0, -1.0
        value = model.bert.encoder.layer[0].attention.self.value.weight
        for src, dst in ((0, 2), (4, 6), (1, 3), (5, 7)):
            value[dst, src] = 1.0
        model.bert.encoder.layer[0].attention.output.dense.weight.copy_(torch.eye(8))
        transform = model.cls.predictions.transform.dense
        transform.weight.copy_(torch.eye(8))
        transform.bias.fill_(20.0)  # gelu(x + 20) = x + 20; the LayerNorm takes the 20 away again
        decoder = model.cls.predictions.decoder
        decoder.weight[ids["tooth"], 2] = 150.0
        decoder.weight[ids["##paste"], 3] = 150.0
        bias = torch.zeros(len(TWO_PIECE_VOCAB))
        bias[ids["tooth"]], bias[ids["##paste"]], bias[ids["cat"]] = -150.0 * 0.22, -5.0, 3.0
        for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
            bias[ids[t]] = -10.0
        decoder.bias.copy_(bias)
        model.cls.predictions.bias.copy_(bias)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return load(str(path))


def _log_probs(lm, ids: list[int], position: int) -> torch.Tensor:
    """The hand-written loop: run the HF model on ``ids`` and take log_softmax at ``position``."""
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, position]
    return logits.log_softmax(-1)


def test_two_piece_word_is_found_and_ranked_first(two_piece_lm):
    lm = two_piece_lm
    text = "the [MASK] sat ."
    piece_level = fill_words(lm, text, top_k=5, max_pieces=1)
    assert piece_level.masks[0].candidates[0].word == "cat"
    assert all("tooth" not in c.word for c in piece_level.masks[0].candidates)

    res = fill_words(lm, text, top_k=5, max_pieces=2)
    best, *rest = res.masks[0].candidates
    assert (best.word, best.pieces) == ("toothpaste", ["tooth", "##paste"])
    assert best.sequence == "the toothpaste sat ." and best.token_id is None
    singles = [c for c in rest if len(c.pieces) == 1]
    assert singles and all(best.score > c.score for c in singles)
    # its score is the PLL-word-l2r of the span: p(tooth | two masks) * p(##paste | tooth, one mask)
    tok = lm.tokenizer
    cls, sep, mask = tok.cls_token_id, tok.sep_token_id, tok.mask_token_id
    the, sat, dot, tooth, paste = tok.convert_tokens_to_ids(["the", "sat", ".", "tooth", "##paste"])
    expected = (_log_probs(lm, [cls, the, mask, mask, sat, dot, sep], 2)[tooth]
                + _log_probs(lm, [cls, the, tooth, mask, sat, dot, sep], 3)[paste])
    assert best.log_prob == pytest.approx(float(expected), abs=1e-5)
    # one-piece words keep their fill-mask probabilities
    every_piece = fill_words(lm, text, top_k=len(TWO_PIECE_VOCAB), max_pieces=1).masks[0].candidates
    for c in singles:
        match = next(p for p in every_piece if p.ids == c.ids)
        assert c.score == pytest.approx(match.score, abs=1e-6)


def test_two_piece_word_through_the_cli(runner, two_piece_lm):
    r = runner.invoke(cli, ["predict", "-m", two_piece_lm.source, "--max-pieces", "2", "-k", "2", "--json",
                            "the [MASK] sat ."])
    assert r.exit_code == 0, r.output
    first = json.loads(r.output)["masks"][0]["candidates"][0]
    assert first["word"] == "toothpaste" and first["pieces"] == ["tooth", "##paste"]
    assert first["score"] == pytest.approx(2.718281828 ** first["log_prob"], rel=1e-6)
    r = runner.invoke(cli, ["predict", "-m", two_piece_lm.source, "--max-pieces", "2", "-k", "2", "the [MASK] sat ."])
    assert r.output.splitlines()[0].startswith("the toothpaste sat .  (0.9") and "[tooth ##paste]" in r.output


def test_joint_fill_of_two_masks_equals_brute_force(tiny_bert):
    """Every pair (a, b) of vocabulary pieces scored by hand: log p(a at the most confident
    mask | both masked) + log p(b at the other | a filled); the top-k must be ours."""
    lm = tiny_bert
    text = "the [MASK] sat on the [MASK] ."
    size = lm.model.config.vocab_size
    ours = fill_words(lm, text, top_k=6, max_pieces=1, beam=size)
    ids = lm.tokenizer(text)["input_ids"]
    masks = [p for p, t in enumerate(ids) if t == lm.mask_token_id]
    root = [_log_probs(lm, ids, p) for p in masks]
    first = int(torch.stack([r.max() for r in root]).argmax())
    other = 1 - first
    pairs = []
    with torch.no_grad():
        batch = torch.tensor(ids).repeat(size, 1)
        batch[:, masks[first]] = torch.arange(size)
        second = lm.model(input_ids=batch).logits[:, masks[other]].log_softmax(-1)  # [V, V]
    total = root[first][:, None] + second
    top = total.flatten().topk(6)
    for value, flat in zip(top.values.tolist(), top.indices.tolist()):
        a, b = divmod(flat, size)
        pair = [None, None]
        pair[first], pair[other] = a, b
        pairs.append((pair, value))
    assert [[w.ids[0] for w in s.words] for s in ours.sentences] == [p for p, _ in pairs]
    assert [s.log_prob for s in ours.sentences] == pytest.approx([v for _, v in pairs], abs=1e-5)
    assert all(s.order == [first + 1, other + 1] for s in ours.sentences)
    for s in ours.sentences:
        assert s.log_prob == pytest.approx(sum(w.log_prob for w in s.words), abs=1e-6)
        assert s.score == pytest.approx(2.718281828459045 ** s.log_prob, rel=1e-6)


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta"])
def test_whole_words_open_with_a_word_start_and_no_sentence_holds_a_mask(fixture, request):
    lm = request.getfixturevalue(fixture)
    tok = lm.tokenizer
    texts = ["the [MASK] sat on the [MASK] .", "[MASK] dog ran in the park .", "she [MASK] the door ."]
    for res in fill_words(lm, texts, top_k=8, max_pieces=3, beam=3):
        cands = []
        for m, mask in enumerate(res.masks):
            mine = mask.candidates + [s.words[m] for s in res.sentences]
            cands += mine
            before = res.tokens[mask.position - 1]
            for c in mine:
                assert c.ids[0] not in tok.all_special_ids
                if fixture == "tiny_bert":
                    assert not c.pieces[0].startswith("##") and all(p.startswith("##") for p in c.pieces[1:])
                else:
                    assert all(not p.startswith("Ġ") for p in c.pieces[1:])
                    if before not in ("<s>", "Ġ"):  # else the word needs no marker there
                        assert c.pieces[0].startswith("Ġ")
                if len(c.ids) > 1:  # a word of several pieces comes in the tokenizer's own segmentation
                    assert tok(c.word, add_special_tokens=False)["input_ids"] == c.ids \
                        or tok(" " + c.word, add_special_tokens=False)["input_ids"] == c.ids
        assert cands
        sequences = [c.sequence for c in cands] + [s.sequence for s in res.sentences]
        assert not any(lm.mask_token in s or "[MASK]" in s for s in sequences)
        if res.text.count("[MASK]") > 1:
            assert len(res.sentences) == 8 and all("___" not in s.sequence for s in res.sentences)
            assert len({s.sequence for s in res.sentences}) == 8  # each sentence once
        words = [tuple(c.ids) for c in res.masks[0].candidates]
        assert len(words) == len(set(words))


def test_piece_level_specials_are_never_printed_as_a_mask(tiny_bert):
    """At max_pieces=1 any vocabulary entry may be proposed (HF parity), but a special token is
    written ⟨MASK⟩-style in the sentence."""
    res = fill_words(tiny_bert, "the [MASK] sat .", top_k=tiny_bert.model.config.vocab_size, max_pieces=1)
    cands = res.masks[0].candidates
    special = [c for c in cands if c.token_id == tiny_bert.mask_token_id]
    assert len(special) == 1 and special[0].sequence == "the ⟨MASK⟩ sat ."
    assert not any("[MASK]" in c.sequence for c in cands)


def test_non_canonical_segmentation_is_dropped(tiny_bert):
    from mlmtool.analysis.fill import _vocabulary

    vocab = _vocabulary(tiny_bert, 3)
    ids = tiny_bert.tokenizer.convert_tokens_to_ids
    # "playing" is one piece, so "play ##ing" is not a word the tokenizer would ever produce
    assert vocab.canonical([ids(["play", "##ing"]), ids(["walk", "##ing"]), ids(["cat", "##s"])]) == [False, True, True]


def test_spans_longer_than_the_model_limit_are_skipped(tiny_bert):
    text = " ".join(["cat"] * 61) + " [MASK]"  # 64 tokens with [CLS] and [SEP]: the limit
    res = fill_words(tiny_bert, text, top_k=3, max_pieces=3)
    assert res.masks[0].candidates and all(len(c.ids) == 1 for c in res.masks[0].candidates)


def test_to_dict_is_json_and_independent_mode(tiny_bert):
    text = "the [MASK] sat on the [MASK] ."
    joint = fill_words(tiny_bert, text, top_k=3)
    independent = fill_words(tiny_bert, text, top_k=3, independent=True)
    data = json.loads(json.dumps(joint.to_dict()))
    assert set(data["masks"][0]["candidates"][0]) >= {"word", "pieces", "score", "log_prob", "sequence"}
    assert len(data["sentences"]) == 3 and set(data["sentences"][0]) >= {"sequence", "score", "log_prob", "words"}
    assert independent.sentences == []
    # the per-mask lists are the same in both modes (each mask with the other left masked)
    assert [[c.ids for c in m.candidates] for m in joint.masks] == \
        [[c.ids for c in m.candidates] for m in independent.masks]


def test_cli_several_masks_print_complete_sentences(runner, tiny_bert_dir):
    text = "the [MASK] sat on the [MASK] ."
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "4", text])
    assert r.exit_code == 0, r.output
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 4 and all("[MASK]" not in l and "___" not in l for l in lines)
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "2", "--independent", text])
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert lines[0] == "mask 1 of 2:" and lines[3] == "mask 2 of 2:" and len(lines) == 6
    assert all("[MASK]" not in l for l in lines)
