"""Word grouping without a fast tokenizer: :func:`mlmtool.tokens.word_ids_of` and
:func:`mlmtool.tokens.word_strings` on a slow (Python) WordPiece tokenizer must give what the
fast tokenizer's ``word_ids()`` and character offsets give on the same vocabulary."""

from __future__ import annotations

import pytest

from mlmtool.tokens import word_ids_of, word_pieces, word_strings

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
