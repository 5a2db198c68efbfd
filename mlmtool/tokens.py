"""Small, model-independent helpers for text and tokens.

Users may always write ``[MASK]``; :func:`to_model_text` turns it into the model's own mask
token. Sub-word pieces are shown without their tokenizer markers: WordPiece ``##`` (BERT),
byte-level BPE ``Ġ`` (RoBERTa) and SentencePiece ``▁`` (CamemBERT).

The word rule lives here: :func:`word_ids_of` finds each token's word in running text (fast
and slow tokenizers alike), :func:`encode_words` tokenizes text already split into words
(a treebank's), :func:`word_strings` gives each word's surface form.

Chinese and Japanese are written without spaces, so a SentencePiece or BPE tokenizer (XLM-R,
CamemBERT-style) reads a whole unspaced sentence as one word. Inside such a run the words come
from a segmenter (:func:`segment`): jieba for Chinese, MeCab (fugashi + unidic-lite) for
Japanese, mapped onto the pieces by character offsets.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from typing import Sequence

USER_MASK = "[MASK]"

_WORD_START_MARKERS = ("Ġ", "▁")


def to_model_text(text: str, mask_token: str) -> str:
    """Replace every ``[MASK]`` in ``text`` with the model's ``mask_token`` (e.g. ``<mask>``)."""
    if mask_token == USER_MASK:
        return text
    return text.replace(USER_MASK, mask_token)


def display_token(token: str) -> str:
    """A token as shown in diagrams and tables: BPE/SentencePiece word markers removed.

    WordPiece continuation marks (``##ing``) are kept: they tell the reader the piece
    continues a word.
    """
    for marker in _WORD_START_MARKERS:
        if token.startswith(marker) and len(token) > 1:
            return token[len(marker):]
    return token.replace("Ġ", " ").replace("Ċ", "\\n")


def marker_style(tokenizer) -> str:
    """Return how the tokenizer marks word boundaries: ``"wordpiece"``, ``"Ġ"`` or ``"▁"``.

    WordPiece marks continuations (``##``); byte-level BPE and SentencePiece mark word
    starts. Detected once from the vocabulary.
    """
    cached = getattr(tokenizer, "_mlmtool_marker_style", None)
    if cached:
        return cached
    style = "wordpiece"
    vocab = tokenizer.get_vocab()
    for marker in _WORD_START_MARKERS:
        if sum(1 for t in vocab if t.startswith(marker)) > len(vocab) // 10:
            style = marker
            break
    try:
        tokenizer._mlmtool_marker_style = style
    except AttributeError:
        pass
    return style


def piece(tokenizer, token_id: int) -> tuple[str, bool]:
    """Return ``(text, joins_previous)`` for one vocabulary id.

    ``text`` is the piece without markers; ``joins_previous`` is True when the piece
    continues the preceding word (``##ing`` in WordPiece, a piece without ``Ġ``/``▁`` in
    BPE/SentencePiece), so it must be written without a space before it.
    """
    token = tokenizer.convert_ids_to_tokens(int(token_id))
    style = marker_style(tokenizer)
    if style == "wordpiece":
        if token.startswith("##") and len(token) > 2:
            return token[2:], True
        return tokenizer.decode([int(token_id)]).strip() or token, False
    text = tokenizer.decode([int(token_id)])
    if token.startswith(style):
        return text.strip(), False
    return text.strip(), True


def fill_text(text: str, mask: str, index: int, word: str, joins_previous: bool) -> str:
    """Replace the ``index``-th occurrence (from 0) of ``mask`` in ``text`` with ``word``.

    When ``joins_previous`` is True the whitespace before the mask is removed, so a
    continuation piece like ``##ing`` yields ``play`` + ``ing`` = ``playing``.
    """
    start = -1
    for _ in range(index + 1):
        start = text.find(mask, start + 1)
        if start < 0:
            raise ValueError(f"text has fewer than {index + 1} '{mask}' tokens")
    before, after = text[:start], text[start + len(mask):]
    if joins_previous:
        before = before.rstrip()
    return before + word + after


def word_pieces(word_ids: list[int | None]) -> list[list[int]]:
    """Group token positions by word.

    Args:
        word_ids: ``[seq]`` word index per token (:func:`word_ids_of`); None marks special
            tokens.

    Returns:
        One list of token positions per word, in text order; special tokens are left out.
        E.g. ``[None, 0, 1, 1, None]`` → ``[[1], [2, 3]]``.
    """
    groups: dict[int, list[int]] = {}
    for pos, wid in enumerate(word_ids):
        if wid is not None:
            groups.setdefault(wid, []).append(pos)
    return [groups[w] for w in sorted(groups)]


def word_ids_of(encoding, batch_index: int, tokenizer) -> list[int | None]:
    """Word index per token of one encoded text, for fast and slow tokenizers alike.

    A fast tokenizer's encoding knows its words (``encoding.word_ids(i)``, from the
    pre-tokenizer). A slow one (e.g. ``BertJapaneseTokenizer``: MeCab words, then WordPiece)
    does not, so the words are read off the pieces, with the rule :func:`piece` uses: a
    WordPiece ``##`` continuation joins the previous word; with byte-level BPE (``Ġ``) or
    SentencePiece (``▁``) a piece without the word-start marker does. The special tokens the
    tokenizer adds (``[CLS]``, ``[SEP]``, ``<s>``, ``</s>``, padding) get None; a mask or
    ``[UNK]`` in the text is a word of its own. A tokenizer word holding two or more Chinese
    or Japanese characters is then split by the segmenter (:func:`split_cjk_words`).

    Args:
        encoding: a ``BatchEncoding`` of a batch of texts (special tokens included).
        batch_index: the text's index in it.
        tokenizer: the tokenizer that made it.

    Returns:
        ``[seq]`` word index (0, 1, ... in text order) or None per token. E.g. the pieces
        ``[CLS] 東京 ##都 に [SEP]`` → ``[None, 0, 0, 1, None]``.
    """
    words = _tokenizer_word_ids(encoding, batch_index, tokenizer)
    ids = [int(t) for t in encoding["input_ids"][batch_index]]
    return split_cjk_words(words, _piece_texts(tokenizer, ids))


def _tokenizer_word_ids(encoding, batch_index: int, tokenizer) -> list[int | None]:
    """The tokenizer's own words (:func:`word_ids_of` before Chinese/Japanese segmentation)."""
    if getattr(encoding, "is_fast", False):
        return list(encoding.word_ids(batch_index))
    ids = [int(t) for t in encoding["input_ids"][batch_index]]
    added = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
             tokenizer.pad_token_id} - {None}
    whole = set(tokenizer.all_special_ids)  # [MASK], [UNK]: never continue or get continued
    style = marker_style(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    out: list[int | None] = []
    word = -1
    for k, (t, tid) in enumerate(zip(tokens, ids)):
        if tid in added:
            out.append(None)
            continue
        prev = ids[k - 1] if k else None
        joins = (t.startswith("##") and len(t) > 2) if style == "wordpiece" else not t.startswith(style)
        if not (joins and out and out[-1] is not None and prev not in whole and tid not in whole):
            word += 1
        out.append(word)
    return out

#: Han ideographs (with 々 〆 〇), kana and half-width katakana: the characters written unspaced.
_CJK_CHAR = re.compile("[\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
                       "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")


@lru_cache(maxsize=1)
def _mecab():
    """A MeCab tagger with the UniDic-lite dictionary (fugashi), made once."""
    import fugashi

    return fugashi.Tagger()


@lru_cache(maxsize=4096)
def _segment_run(run: str, japanese: bool) -> tuple[str, ...]:
    """The words of one unspaced run of Chinese or Japanese characters.

    Japanese: MeCab with UniDic-lite (fugashi), the dictionary of Tohoku's Japanese BERT.
    Chinese: jieba's default dictionary with its HMM for unknown words (Sun 2012, jieba).
    The words always join back into ``run``; if a segmenter changed the text, the run is
    kept whole.
    """
    if japanese:
        words = [w.surface for w in _mecab()(run)]
    else:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        words = jieba.lcut(run, HMM=True)
    return tuple(words) if "".join(words) == run else (run,)


def segment(text: str) -> list[int]:
    """Start offsets of the words of ``text``: Chinese/Japanese runs split by a segmenter.

    A maximal run of Han/kana characters is split by :func:`_segment_run` (Japanese when
    ``text`` has any kana, else Chinese); every other maximal run of characters is one word.

    Returns:
        Sorted character offsets into ``text``, starting with 0 (empty for empty text).
        E.g. ``"猫在沙发上睡觉。"`` → ``[0, 1, 2, 4, 5, 7]`` (猫 在 沙发 上 睡觉 。).
    """
    japanese = bool(_KANA.search(text))
    starts, pos = [], 0
    for run in re.finditer(f"{_CJK_CHAR.pattern}+|(?:(?!{_CJK_CHAR.pattern}).)+", text, re.S):
        pos = run.start()
        if not _CJK_CHAR.match(run.group()):
            starts.append(pos)
            continue
        for word in _segment_run(run.group(), japanese):
            starts.append(pos)
            pos += len(word)
    return starts


def _piece_texts(tokenizer, ids: list[int]) -> list[str]:
    """Each piece's characters without its tokenizer marker (``##``, ``▁``, ``Ġ``)."""
    style = marker_style(tokenizer)
    out = []
    for token in tokenizer.convert_ids_to_tokens(ids):
        if style == "wordpiece":
            out.append(token[2:] if token.startswith("##") and len(token) > 2 else token)
        elif style == "▁":
            out.append(token[1:] if token.startswith("▁") else token)
        else:
            out.append(tokenizer.convert_tokens_to_string([token]).strip())
    return out


def split_cjk_words(word_ids: list[int | None], pieces: list[str]) -> list[int | None]:
    """Split each word holding two or more Chinese/Japanese characters at the segmenter's words.

    The word's pieces are joined into one string and :func:`segment`-ed; each piece belongs
    to the segmenter word that its first character is in, so a piece that straddles two
    segmenter words joins the first (and a bare ``▁`` piece joins the next piece's word).
    Other words (English, a single character, the treebank's given words) are untouched.

    Args:
        word_ids: ``[seq]`` the tokenizer's word per token (None: special token).
        pieces: ``[seq]`` each token's characters without markers (:func:`_piece_texts`).

    Returns:
        ``[seq]`` word ids renumbered 0, 1, ... in text order; identical to ``word_ids``
        when no word needed splitting.
    """
    key_of: dict[int, tuple[int, int]] = {}
    for wid, group in enumerate(word_pieces(word_ids)):
        joined = "".join(pieces[p] for p in group)
        if len(_CJK_CHAR.findall(joined)) < 2:
            key_of.update((p, (wid, 0)) for p in group)
            continue
        starts, offset = segment(joined), 0
        for p in group:
            key_of[p] = (wid, bisect_right(starts, offset) - 1)
            offset += len(pieces[p])
    if all(sub == 0 for _, sub in key_of.values()):
        return list(word_ids)
    number = {key: k for k, key in enumerate(sorted(set(key_of.values())))}
    return [number[key_of[p]] if p in key_of else None for p in range(len(word_ids))]



def encode_words(lm, tokens: Sequence[Sequence[str]], space_after: Sequence[Sequence[bool]] | None = None
                 ) -> tuple[list[list[int]], list[list[int | None]]]:
    """Token ids and, per id, the index of its word, for sentences already split into words.

    The counterpart of :func:`word_ids_of` when the words are given (a treebank's tokens)
    instead of found by the tokenizer: the word boundaries are the given ones, each word
    tokenized into its own pieces.

    Fast tokenizers get the words with ``is_split_into_words=True``. When a leading space
    changes how the pre-tokenizer reads a word and it does not add one itself (byte-level
    BPE such as RoBERTa's, ``Ġ``), each word that had a space before it in the text gets it,
    so its pieces are those of running text. Slow tokenizers (MeCab + WordPiece) run
    ``tokenize`` on each word and add the special tokens themselves. A word may get no
    piece (a control character); its index then appears nowhere.

    Args:
        lm: a :class:`~mlmtool.models.LoadedModel` (only its tokenizer is used).
        tokens: ``[N][T]`` words per sentence.
        space_after: ``[N][T]`` whether a space follows each word (default: all True).

    Returns:
        ``(ids, word_ids)``: per sentence ``[S]`` ids (special tokens included) and ``[S]``
        word indices (None for special tokens). Lengths are not checked: the caller
        leaves out sentences longer than the model accepts.
    """
    tok = lm.tokenizer
    if not tokens:
        return [], []
    if getattr(tok, "is_fast", False):
        words = [list(t) for t in tokens]
        if _space_marks_words(tok):
            for s, sentence in enumerate(words):
                spaces = space_after[s] if space_after is not None else [True] * len(sentence)
                for k in range(1, len(sentence)):
                    if spaces[k - 1]:
                        sentence[k] = " " + sentence[k]
        enc = tok(words, is_split_into_words=True, add_special_tokens=True, truncation=False)
        return [list(x) for x in enc["input_ids"]], [list(enc.word_ids(i)) for i in range(len(words))]
    all_ids, all_words = [], []
    for sentence in tokens:
        flat, owner = [], []
        for k, word in enumerate(sentence):
            pieces = tok.convert_tokens_to_ids(tok.tokenize(word))
            flat += pieces
            owner += [k] * len(pieces)
        ids = tok.build_inputs_with_special_tokens(flat)
        special = tok.get_special_tokens_mask(flat)
        it = iter(owner)
        all_ids.append(list(ids))
        all_words.append([None if m else next(it) for m in special])
    return all_ids, all_words


def _space_marks_words(tokenizer) -> bool:
    """True when the pre-tokenizer reads ``" b"`` differently from ``"b"`` (byte-level BPE
    without ``add_prefix_space``), so pre-split words need their spaces back."""
    pre = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    if pre is None:
        return False
    first = lambda text: "".join(p for p, _ in pre.pre_tokenize_str(text))  # noqa: E731
    return first(" b") != first("b")


def _piece_string(tokenizer, tokens: list[str]) -> str:
    """The text of one word's pieces: WordPiece ``##`` removed and nothing inserted (so
    Japanese and Chinese words stay as written); BPE/SentencePiece through the tokenizer."""
    if marker_style(tokenizer) == "wordpiece":
        return "".join(t[2:] if t.startswith("##") and len(t) > 2 else t for t in tokens)
    return tokenizer.convert_tokens_to_string(tokens).strip()


def _fold(text: str) -> str:
    """Lower-case ``text`` keeping its length (one character per character), for matching."""
    return "".join((c.lower() or c)[0] for c in text)


def _align_words(text: str, words: list[str]) -> list[str]:
    """Each of ``words`` (the pieces' text, in order) as it is written in ``text``.

    Found words (case-insensitive, left to right) take the text's spelling; a word not
    found (``[UNK]``, stripped accents) takes the text between its found neighbours when it
    is alone there, else keeps the pieces' text.
    """
    folded = _fold(text)
    out = list(words)
    cursor, pending = 0, []

    def settle(end: int) -> None:
        gap = text[cursor:end].strip()
        if len(pending) == 1 and gap:
            out[pending[0]] = gap

    for k, w in enumerate(words):
        p = folded.find(_fold(w), cursor) if w else -1
        if p < 0:
            pending.append(k)
            continue
        settle(p)
        pending = []
        out[k] = text[p:p + len(w)]
        cursor = p + len(w)
    settle(len(text))
    return out


def word_strings(text: str, encoding, batch_index: int = 0, tokenizer=None) -> list[str]:
    """The surface string of each word of ``encoding`` (same order as :func:`word_pieces`
    of :func:`word_ids_of`).

    A fast tokenizer's character offsets give the user's own text (case, accents); with
    ``tokenizer`` given, Chinese/Japanese words are the segmenter's (:func:`word_ids_of`),
    without it the tokenizer's own. A slow
    tokenizer has no offsets: a word is then its pieces joined (``##`` removed, no spaces
    inserted, so Japanese stays as written), matched back into ``text`` for its case.

    Args:
        text: the text that was encoded (with the model's mask token).
        encoding: its ``BatchEncoding``; batch_index: the text's index in it.
        tokenizer: the tokenizer; needed for a slow tokenizer's encoding and for the
            segmenter's words.

    Raises:
        ValueError: a slow tokenizer's encoding without ``tokenizer``.
    """
    if getattr(encoding, "is_fast", False):
        word_ids = (word_ids_of(encoding, batch_index, tokenizer) if tokenizer is not None
                    else list(encoding.word_ids(batch_index)))
        out = []
        for group in word_pieces(word_ids):
            first = encoding.token_to_chars(batch_index, group[0])
            last = encoding.token_to_chars(batch_index, group[-1])
            out.append(text[first.start:last.end].strip())  # a mask with lstrip=True spans its space
        return out
    if tokenizer is None:
        raise ValueError("word_strings needs the tokenizer for a slow tokenizer's encoding")
    ids = encoding["input_ids"][batch_index]
    tokens = tokenizer.convert_ids_to_tokens([int(t) for t in ids])
    groups = word_pieces(word_ids_of(encoding, batch_index, tokenizer))
    return _align_words(text, [_piece_string(tokenizer, [tokens[p] for p in g]) for g in groups])
