"""Word grouping without a fast tokenizer: :func:`mlmtool.tokens.word_ids_of` and
:func:`mlmtool.tokens.word_strings` on a slow (Python) WordPiece tokenizer must give what the
fast tokenizer's ``word_ids()`` and character offsets give on the same vocabulary; and
:func:`mlmtool.tokens.encode_words` keeps words given in advance (a treebank's) whole, on
both kinds of tokenizer."""

from __future__ import annotations

import pytest

from mlmtool.tokens import encode_words, word_ids_of, word_pieces, word_strings

TEXTS = [
    "The Cats walked slowly",                       # cat ##s: one word; the user's case
    "she opened the door, and let the cat out!",    # punctuation is a word of its own
    "the cat [MASK] on the mat .",                  # the mask is a word
    "He Zorblaxed the dog quickly",                 # an unknown word is one [UNK]
    "  the   big red car  ",                        # extra spaces
]


@pytest.fixture(scope="module")
def slow_and_fast(tiny_bert_dir):
    from transformers import BertTokenizerFast
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    slow = BertTokenizerLegacy(str(tiny_bert_dir / "vocab.txt"), do_lower_case=True)
    fast = BertTokenizerFast.from_pretrained(str(tiny_bert_dir), do_lower_case=True)
    assert not getattr(slow(TEXTS), "is_fast", False) and fast(TEXTS).is_fast
    return slow, fast


def test_slow_word_ids_equal_the_fast_tokenizers(slow_and_fast):
    slow, fast = slow_and_fast
    es, ef = slow(TEXTS), fast(TEXTS)
    for i in range(len(TEXTS)):
        assert es["input_ids"][i] == ef["input_ids"][i]
        assert word_ids_of(es, i, slow) == ef.word_ids(i) == word_ids_of(ef, i, fast), TEXTS[i]
    assert word_pieces(word_ids_of(es, 0, slow)) == [[1], [2, 3], [4], [5]]  # the cat ##s walked slowly


def test_slow_word_strings_are_the_users_text(slow_and_fast):
    slow, fast = slow_and_fast
    es, ef = slow(TEXTS), fast(TEXTS)
    for i, text in enumerate(TEXTS):
        assert word_strings(text, es, i, slow) == word_strings(text, ef, i), text
    assert word_strings(TEXTS[0], es, 0, slow) == ["The", "Cats", "walked", "slowly"]
    assert word_strings(TEXTS[3], es, 3, slow)[1] == "Zorblaxed"  # the [UNK] takes the text between its neighbours


def test_slow_word_strings_need_the_tokenizer(slow_and_fast):
    slow, _ = slow_and_fast
    with pytest.raises(ValueError, match="tokenizer"):
        word_strings(TEXTS[0], slow(TEXTS), 0)


def test_encode_words_keeps_the_treebanks_words(tiny_bert, tiny_roberta):
    words = [["the", "cats", "sat", "."]]
    ids, wids = encode_words(tiny_bert, words)
    assert tiny_bert.tokenizer.convert_ids_to_tokens(ids[0]) == ["[CLS]", "the", "cat", "##s", "sat", ".", "[SEP]"]
    assert wids[0] == [None, 0, 1, 1, 2, 3, None]
    # Byte-level BPE: words after a space get the space (Ġ), as in running text; "." had none.
    ids, wids = encode_words(tiny_roberta, words, [[True, True, False, True]])
    assert ids[0] == tiny_roberta.tokenizer("the cats sat.")["input_ids"]
    assert [w for w in wids[0] if w is not None] == sorted(w for w in wids[0] if w is not None)


def test_encode_words_slow_equals_fast(slow_and_fast):
    """The slow path (one ``tokenize`` per word, special tokens added by the tokenizer) gives the
    fast path's ids and word indices on the same vocabulary."""
    from types import SimpleNamespace

    slow, fast = slow_and_fast
    words = [["The", "Cats", "walked", "slowly"], ["she", "opened", "the", "door", ",", "and", "Zorblaxed"], ["."]]
    assert encode_words(SimpleNamespace(tokenizer=slow), words) == encode_words(SimpleNamespace(tokenizer=fast), words)
    assert encode_words(SimpleNamespace(tokenizer=slow), []) == ([], [])
