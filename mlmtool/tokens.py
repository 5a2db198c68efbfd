"""Small, model-independent helpers for text and tokens.

Users may always write ``[MASK]``; :func:`to_model_text` turns it into the model's own mask
token. Sub-word pieces are shown without their tokenizer markers: WordPiece ``##`` (BERT),
byte-level BPE ``Ġ`` (RoBERTa) and SentencePiece ``▁`` (CamemBERT).
"""

from __future__ import annotations

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
        word_ids: ``[seq]`` word index per token from a fast tokenizer's
            ``encoding.word_ids(i)``; None marks special tokens.

    Returns:
        One list of token positions per word, in text order; special tokens are left out.
        E.g. ``[None, 0, 1, 1, None]`` → ``[[1], [2, 3]]``.
    """
    groups: dict[int, list[int]] = {}
    for pos, wid in enumerate(word_ids):
        if wid is not None:
            groups.setdefault(wid, []).append(pos)
    return [groups[w] for w in sorted(groups)]


def word_strings(text: str, encoding, batch_index: int = 0) -> list[str]:
    """The surface string of each word of ``encoding`` (same order as :func:`word_pieces`).

    Uses the fast tokenizer's character offsets, so case and accents are the user's.
    """
    out = []
    seen = set()
    for wid in encoding.word_ids(batch_index):
        if wid is None or wid in seen:
            continue
        seen.add(wid)
        span = encoding.word_to_chars(batch_index, wid)
        out.append(text[span.start:span.end])
    return out
