"""The registry's four tokenizer kinds on real French, German, Chinese and Japanese sentences.

Each language gets a tokenizer trained here on its Universal Dependencies development set
(../shared/data/ud, CC BY-SA 4.0) and a tiny random model, mirroring the registry's models:

* ``fr``: a SentencePiece Unigram model with ``<mask>``, CamemBERT-style (``CamembertTokenizer``
  over a ``tokenizers`` Unigram, ``▁`` word starts) + ``CamembertForMaskedLM``;
* ``de``: cased WordPiece (``##`` continuations), as bert-base-german-cased;
* ``zh``: WordPiece with every CJK character on its own, as bert-base-chinese;
* ``ja``: MeCab word splitting (``fugashi`` + ``unidic-lite``) then WordPiece, as
  tohoku-nlp/bert-base-japanese-v3 (a slow ``BertJapaneseTokenizer``).

The tokenizers and models are built once per session (a few seconds each). Each test then
checks a property on real sentences: the treebank's words align with the pieces, nothing
inserts spaces into Chinese or Japanese, ``[MASK]`` becomes the model's own mask token.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

UD = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud"
FILES = {"fr": "fr_gsd", "de": "de_gsd", "zh": "zh_gsdsimp", "ja": "ja_gsd"}
LANGS = list(FILES)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# slow: the session fixtures train four tokenizers and build four models before the first test
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not UD.is_dir(), reason="UD treebanks not in ../shared/data/ud")]


def treebank(lang: str) -> Path:
    return UD / f"{FILES[lang]}-ud-dev.conllu"


@lru_cache(maxsize=None)
def trees(lang: str):
    from mlmtool.analysis.heads.treebank import read_conllu

    return tuple(read_conllu(treebank(lang)))


def _save_tiny(config_cls, model_cls, tok, path: Path, **config) -> None:
    import torch

    torch.manual_seed(0)
    model = model_cls(config_cls(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, **config))
    model.save_pretrained(path)
    tok.save_pretrained(path)


def _wordpiece(texts, path: Path, vocab_size: int, chinese: bool) -> Path:
    from tokenizers import BertWordPieceTokenizer

    wp = BertWordPieceTokenizer(lowercase=False, strip_accents=False, handle_chinese_chars=chinese)
    wp.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, limit_alphabet=6000,
                           special_tokens=SPECIALS, show_progress=False)
    wp.save_model(str(path))
    return path / "vocab.txt"


def build_model(lang: str, path: Path) -> Path:
    """Train ``lang``'s tokenizer on its treebank's sentences and save it with a tiny model."""
    from transformers import BertConfig, BertForMaskedLM

    texts = [t.text for t in trees(lang)]
    path.mkdir(parents=True, exist_ok=True)
    if lang == "fr":
        from tokenizers import SentencePieceUnigramTokenizer
        from transformers import CamembertConfig, CamembertForMaskedLM, CamembertTokenizer

        sp = SentencePieceUnigramTokenizer()
        sp.train_from_iterator(texts[:600], vocab_size=2000, unk_token="<unk>", show_progress=False,
                               special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        tok = CamembertTokenizer(vocab=[tuple(v) for v in json.loads(sp.to_str())["model"]["vocab"]])
        _save_tiny(CamembertConfig, CamembertForMaskedLM, tok, path, max_position_embeddings=514, type_vocab_size=1,
                   pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    elif lang == "ja":
        from transformers import BertJapaneseTokenizer
        from transformers.models.bert_japanese.tokenization_bert_japanese import MecabTokenizer

        pytest.importorskip("fugashi")
        pytest.importorskip("unidic_lite")
        mecab = MecabTokenizer(do_lower_case=False, mecab_dic="unidic_lite")
        vocab = _wordpiece([" ".join(mecab.tokenize(t)) for t in texts], path, 6000, chinese=False)
        tok = BertJapaneseTokenizer(str(vocab), word_tokenizer_type="mecab", subword_tokenizer_type="wordpiece",
                                    mecab_kwargs={"mecab_dic": "unidic_lite"})
        _save_tiny(BertConfig, BertForMaskedLM, tok, path, max_position_embeddings=512)
    else:
        from transformers import BertTokenizerFast

        vocab = _wordpiece(texts, path, 4000 if lang == "de" else 6000, chinese=True)
        tok = BertTokenizerFast(str(vocab), do_lower_case=False, strip_accents=False)
        _save_tiny(BertConfig, BertForMaskedLM, tok, path, max_position_embeddings=512)
    return path


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """``lang -> directory`` of the trained tokenizer + tiny model, built on first use."""
    built: dict[str, Path] = {}

    def get(lang: str) -> Path:
        if lang not in built:
            built[lang] = build_model(lang, tmp_path_factory.mktemp(f"tiny-{lang}"))
        return built[lang]

    return get


@pytest.fixture(scope="session")
def models(model_dirs):
    """``lang -> LoadedModel`` through :func:`mlmtool.load`, loaded once."""
    from mlmtool.models import load

    loaded = {}

    def get(lang: str):
        if lang not in loaded:
            loaded[lang] = load(str(model_dirs(lang)))
        return loaded[lang]

    return get


def _piece_text(tok, ids) -> str:
    """The pieces' text without the tokenizers' markers (``##``, ``▁``)."""
    out = ""
    for t in tok.convert_ids_to_tokens(list(ids)):
        out += t[2:] if t.startswith("##") else t.replace("▁", "")
    return out


def example_sentence(lang: str, lm):
    """A treebank sentence of 6-15 tokens, no space in zh/ja, every piece known, with a NOUN."""
    for tree in trees(lang):
        if not 6 <= len(tree.tokens) <= 15 or (lang in ("zh", "ja") and " " in tree.text):
            continue
        ids = lm.tokenizer(tree.text)["input_ids"]
        if lm.tokenizer.unk_token_id in ids or "NOUN" not in tree.upos:
            continue
        noun = tree.token_of[tree.upos.index("NOUN")]
        if sum(t == tree.tokens[noun] for t in tree.tokens) == 1 and tree.text.count(tree.tokens[noun]) == 1:
            return tree, noun
    raise AssertionError(f"no example sentence in {lang}")


def masked(tree, k: int) -> str:
    """The sentence with token ``k`` written as ``[MASK]`` (the text's own spacing)."""
    return tree.text.replace(tree.tokens[k], "[MASK]", 1)


# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_treebank_words_align_with_pieces(lang, models):
    from mlmtool.tokens import encode_words

    lm = models(lang)
    sample = trees(lang)[:120]
    ids, word_ids = encode_words(lm, [t.tokens for t in sample], [t.space_after for t in sample])
    exact = total = 0
    for tree, seq, wids in zip(sample, ids, word_ids):
        special = lm.tokenizer.get_special_tokens_mask(seq, already_has_special_tokens=True)
        assert [w is None for w in wids] == [bool(m) for m in special]
        real = [w for w in wids if w is not None]
        assert real == sorted(real) and set(real) <= set(range(len(tree.tokens)))  # never re-split across words
        for k, token in enumerate(tree.tokens):
            pieces = [i for i, w in zip(seq, wids) if w == k]
            total += 1
            exact += _piece_text(lm.tokenizer, pieces) == token.replace(" ", "")
    assert exact / total > 0.97, (lang, exact, total)


@pytest.mark.parametrize("lang", LANGS)
def test_predict_uses_the_models_mask_and_keeps_the_text(lang, models):
    from mlmtool.analysis.predict import predict
    from mlmtool.core.forward import encode

    lm = models(lang)
    assert lm.mask_token == ("<mask>" if lang == "fr" else "[MASK]")
    tree, k = example_sentence(lang, lm)
    text = masked(tree, k)
    ids = encode(lm, [text], need_mask=True)["input_ids"][0]
    assert ids.count(lm.mask_token_id) == 1  # [MASK] became <mask> for the CamemBERT-style model
    result = predict(lm, text, top_k=3)
    before, after = text.split("[MASK]")
    for cand in result.masks[0].candidates:
        assert "[MASK]" not in cand.sequence and lm.mask_token not in cand.sequence
        assert cand.sequence.startswith(before.rstrip()) and cand.sequence.endswith(after)
        if lang in ("zh", "ja"):
            assert " " not in cand.sequence, cand.sequence  # nothing inserts spaces


@pytest.mark.parametrize("lang", LANGS)
def test_attention_tokens_and_rows(lang, models):
    from mlmtool.analysis.attention import attention

    lm = models(lang)
    tree, _ = example_sentence(lang, lm)
    res = attention(lm, tree.text)
    S = len(res.tokens)
    assert res.attention.shape == (2, 4, S, S)
    np.testing.assert_allclose(res.attention.sum(-1), 1.0, atol=1e-5)
    words = "".join(t[2:] if t.startswith("##") else t for t, s in zip(res.tokens, res.special) if not s)
    assert words == tree.text.replace(" ", "")
    if lang == "ja":  # slow tokenizer: a ## piece joins the previous word, so the words are MeCab's
        n_words = max(w for w in res.word_ids if w is not None) + 1
        assert n_words == len(lm.tokenizer.word_tokenizer.tokenize(tree.text))
        assert all(w is None or (w == res.word_ids[p - 1]) == t.startswith("##")
                   for p, (t, w) in enumerate(zip(res.tokens, res.word_ids)))


@pytest.mark.parametrize("lang", LANGS)
def test_heads_conllu_on_real_sentences(lang, models):
    from mlmtool.analysis.heads.syntax import score_syntax

    lm = models(lang)
    scores = score_syntax(lm, treebank(lang), limit=60, min_count=15, batch_size=16)
    syn = scores.syntax
    assert scores.sentences == [t.text for t in trees(lang)[:60]]  # the treebank's text, no inserted spaces
    assert syn.n_sentences == 60 and len(syn.relations) >= 3
    assert syn.accuracy.shape == (len(syn.relations), 2, 2, 4)
    assert ((syn.accuracy >= 0) & (syn.accuracy <= 1)).all()
    # The example's units are the treebank's tokens, one unit per token.
    ex = next(iter(scores.examples.values()))
    tree = trees(lang)[scores.sentences.index(ex.sentence)]
    assert [u for u in ex.units if u not in (lm.tokenizer.cls_token, lm.tokenizer.sep_token)] == tree.tokens


def test_cli_heads_conllu_japanese(runner, model_dirs, tmp_path):
    from mlmtool.cli import cli

    out = tmp_path / "ja"
    r = runner.invoke(cli, ["heads", "-m", str(model_dirs("ja")), "--conllu", str(treebank("ja")), "-n", "40",
                            "--min-count", "25", "--pair", "NOUN:VERB", "-o", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "heads.json").read_text(encoding="utf-8"))
    assert data["n_sentences"] == 40 and any(x["relation"] == "NOUN:VERB" for x in data["syntax"])
    md = (out / "analysis.md").read_text(encoding="utf-8")
    texts = {t.text for t in trees("ja")[:40]}
    shown = [line.split("*")[1] for line in md.splitlines() if line.startswith("Example: *")]
    assert shown and all(s.replace("\\", "") in texts for s in shown)  # examples verbatim, no spaces added


@pytest.mark.parametrize("lang", LANGS)
def test_embed_words_are_the_texts_words(lang, models):
    from mlmtool.analysis.embed import word_vectors

    lm = models(lang)
    tree, _ = example_sentence(lang, lm)
    vectors = word_vectors(lm, [tree.text])
    assert vectors.vectors.shape == (len(vectors.words), 32)
    assert "".join(vectors.words) == tree.text.replace(" ", "")
    assert all(w and " " not in w and w in tree.text for w in vectors.words)  # the text's words, no spaces inserted
    if lang == "ja":  # slow tokenizer: the words are MeCab's, each a WordPiece word and its ## continuations
        assert vectors.words == lm.tokenizer.word_tokenizer.tokenize(tree.text)


@pytest.mark.parametrize("lang", LANGS)
def test_explain_on_real_sentences(lang, models):
    from mlmtool.analysis.explain import explain

    lm = models(lang)
    tree, k = example_sentence(lang, lm)
    text = masked(tree, k)
    res = explain(lm, text, max_evals=40)
    assert res.word_values.sum() + res.base_value == pytest.approx(res.full_value, abs=1e-5)
    others = [w for w, m in zip(res.words, res.word_is_mask) if not m]
    assert "".join(others) == text.replace("[MASK]", "").replace(" ", "")
    assert all(w and " " not in w and w in text for w in others)  # the text's words, no spaces inserted
    assert sum(res.word_is_mask) == 1 and res.words[res.word_is_mask.index(True)] == "[MASK]"
    added = ("[CLS]", "[SEP]", "<s>", "</s>")
    assert [p for g in res.word_tokens for p in g] == [p for p, t in enumerate(res.tokens) if t not in added]
    if lang == "ja":
        before, after = text.split("[MASK]")
        mecab = lm.tokenizer.word_tokenizer.tokenize
        assert res.words == mecab(before) + ["[MASK]"] + mecab(after)


@pytest.mark.parametrize("lang", LANGS)
def test_explain_target_resolves_to_the_words_pieces(lang, models):
    from mlmtool.analysis.explain import resolve_target
    from mlmtool.errors import MlmtoolError

    lm = models(lang)
    tree, k = example_sentence(lang, lm)
    text, noun = masked(tree, k), tree.tokens[k]
    pieces = lm.tokenizer(tree.text, add_special_tokens=False)["input_ids"]
    own = lm.tokenizer(noun, add_special_tokens=False)["input_ids"]  # the noun's pieces (ja: no offsets)
    assert any(pieces[p:p + len(own)] == own for p in range(len(pieces)))
    if len(own) == 1:
        assert resolve_target(lm, text, noun) == own[0]
    else:
        with pytest.raises(MlmtoolError, match=f"is {len(own)} tokens"):
            resolve_target(lm, text, noun)
    # a one-piece word of another sentence, written at the mask, is that piece
    word = next(t for other in trees(lang)[:50] for t, u in zip(other.tokens, other.upos)
                if u == "NOUN" and len(lm.tokenizer(t, add_special_tokens=False)["input_ids"]) == 1
                and lm.tokenizer.unk_token_id not in lm.tokenizer(t, add_special_tokens=False)["input_ids"])
    assert resolve_target(lm, text, word) == lm.tokenizer(word, add_special_tokens=False)["input_ids"][0]
