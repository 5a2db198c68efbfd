"""Score sentences with a masked LM: pseudo-log-likelihood (PLL) and pseudo-perplexity.

Salazar, Liang, Nguyen & Kirchhoff 2020, "Masked Language Model Scoring" (ACL): each token
of the sentence is masked in turn and the model's natural-log probability of the original
token at that position is taken; the PLL is their sum, and the pseudo-perplexity
``PPPL = exp(-PLL / N)`` over the ``N`` scored tokens. The special tokens the tokenizer adds
(``[CLS]``, ``[SEP]``, ``<s>``, ``</s>``) are not scored (as in Salazar et al. and minicons'
``MaskedLMScorer``); every token of the text is, ``[UNK]`` included.

``variant="word-l2r"`` is Kauf & Ivanova 2023, "A Better Way to Do Masked Language Model
Scoring" (ACL; minicons' ``PLL_metric="within_word_l2r"``): when a token is scored, the
tokens to its right *in the same word* are masked too, so a word of several pieces is not
scored as near-certain from its own other pieces.

The masked copies and their scores come from :mod:`mlmtool.analysis.pll` (the one PLL
primitive, shared with fill and compare): the copies of all sentences are bucketed by length,
``batch_size`` per forward pass, and the vocabulary projection runs only at the one masked
position of each copy, so no ``[copies, S, V]`` logits tensor is ever built.

Minimal pairs (BLiMP-style, Warstadt et al. 2020): a pair counts as right when the good
sentence has the higher PLL (:func:`score_pairs`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..core.forward import check_length, encode
from ..errors import MlmtoolError
from ..models import LoadedModel
from ..tokens import display_token, word_ids_of
from .pll import VARIANTS, MaskedCopy, check_variant, masked_copies, score_copies

__all__ = ["VARIANTS", "BATCH_SIZE", "TokenScore", "SentenceScore", "PairScore", "PairsResult", "score_sentences",
           "score_pairs", "read_pairs"]

#: Masked copies per forward pass (``-b/--batch-size`` of ``mlmtool score``).
BATCH_SIZE = 256


@dataclass
class TokenScore:
    """One scored token.

    Attributes:
        token: the token as shown (``display_token``: BPE/SentencePiece markers removed,
            WordPiece ``##`` kept).
        log_prob: natural-log probability of this token with it masked (``≤ 0``).
        position: its position in the model input (from 0; ``[CLS]`` is 0).
    """

    token: str
    log_prob: float
    position: int


@dataclass
class SentenceScore:
    """The PLL of one sentence.

    Attributes:
        text: the sentence.
        pll: pseudo-log-likelihood, the sum of ``tokens[i].log_prob`` (natural log, ``≤ 0``).
        pppl: pseudo-perplexity ``exp(-pll / len(tokens))`` (``≥ 1``).
        tokens: every scored token (all but the added special tokens), in order.
        variant: ``"original"`` (Salazar et al. 2020) or ``"word-l2r"`` (Kauf & Ivanova 2023).
    """

    text: str
    pll: float
    pppl: float
    tokens: list[TokenScore] = field(default_factory=list)
    variant: str = VARIANTS[0]

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``: ``text``, ``pll``, ``pppl``, ``variant``, ``tokens`` (each
        ``token``, ``log_prob``, ``position``)."""
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path`` (as ``mlmtool score --json`` prints
        it) and return the path; an existing file is replaced.

        Raises:
            OSError: the file cannot be written.
        """
        return _save_json(self.to_dict(), path)


@dataclass
class PairScore:
    """One minimal pair.

    Attributes:
        good, bad: the acceptable and the unacceptable sentence.
        good_pll, bad_pll: their PLLs.
        correct: ``good_pll > bad_pll``.
        phenomenon: the pair's label (third TSV column), or ``""``.
        line: its line in the pairs file (from 1), or 0.
    """

    good: str
    bad: str
    good_pll: float
    bad_pll: float
    correct: bool
    phenomenon: str = ""
    line: int = 0


@dataclass
class PairsResult:
    """Accuracy on a set of minimal pairs.

    Attributes:
        pairs: one :class:`PairScore` per pair, in input order.
        variant: the PLL variant used.
    """

    pairs: list[PairScore]
    variant: str = VARIANTS[0]

    @property
    def correct(self) -> int:
        """Pairs whose good sentence has the higher PLL."""
        return sum(p.correct for p in self.pairs)

    @property
    def total(self) -> int:
        """Number of pairs."""
        return len(self.pairs)

    @property
    def accuracy(self) -> float:
        """``correct / total`` (0 when there are no pairs)."""
        return self.correct / self.total if self.total else 0.0

    def by_phenomenon(self) -> dict[str, tuple[int, int]]:
        """``{phenomenon: (correct, total)}`` in first-seen order (unlabelled pairs under ``""``)."""
        out: dict[str, list[int]] = {}
        for p in self.pairs:
            counts = out.setdefault(p.phenomenon, [0, 0])
            counts[0] += p.correct
            counts[1] += 1
        return {k: (c, t) for k, (c, t) in out.items()}

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``: ``correct``, ``total``, ``accuracy``, ``by_phenomenon``, ``pairs``."""
        return {"variant": self.variant, "correct": self.correct, "total": self.total, "accuracy": self.accuracy,
                "by_phenomenon": {k: {"correct": c, "total": t} for k, (c, t) in self.by_phenomenon().items()},
                "pairs": [asdict(p) for p in self.pairs]}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path`` (as ``mlmtool score --pairs --json``
        prints it) and return the path; an existing file is replaced.

        Raises:
            OSError: the file cannot be written.
        """
        return _save_json(self.to_dict(), path)


def score_sentences(lm: LoadedModel, texts: str | Sequence[str], variant: str = VARIANTS[0],
                    batch_size: int = BATCH_SIZE) -> SentenceScore | list[SentenceScore]:
    """Pseudo-log-likelihood and pseudo-perplexity of each sentence (see the module docstring).

    Args:
        lm: a model from :func:`mlmtool.load` with a masked-LM head.
        texts: one sentence or a list.
        variant: ``"original"`` (default; Salazar et al. 2020) or ``"word-l2r"`` (Kauf &
            Ivanova 2023: the later pieces of the same word are masked too).
        batch_size: masked copies per forward pass (default 256); the copies of all the
            sentences are bucketed by length (:func:`mlmtool.analysis.pll.score_copies`).

    Returns:
        A :class:`SentenceScore` for a string, else a list in input order.

    Raises:
        NoMLMHeadError: the model has no trained masked-LM head.
        MlmtoolError: an empty text, a text longer than the model's limit, an unknown
            ``variant``, a ``batch_size`` below 1, or a text with no token to score.
    """
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    lm.require_mlm_head()
    check_variant(variant)
    if batch_size < 1:
        raise MlmtoolError(f"batch_size must be at least 1 (got {batch_size})", param="batch_size")
    encoding = encode(lm, items)
    copies = [_sentence_copies(lm, encoding, i, variant, len(items)) for i in range(len(items))]
    log_probs = iter(score_copies(lm, [c for cs in copies for c in cs], batch_size))
    out = []
    for i, (text, sentence) in enumerate(zip(items, copies)):
        pieces = lm.tokenizer.convert_ids_to_tokens(encoding["input_ids"][i])
        tokens = [TokenScore(token=display_token(pieces[c.position]), log_prob=next(log_probs), position=c.position)
                  for c in sentence]
        pll = sum(t.log_prob for t in tokens)
        out.append(SentenceScore(text=text, pll=pll, pppl=math.exp(-pll / len(tokens)), tokens=tokens,
                                 variant=variant))
    return out[0] if single else out


def _sentence_copies(lm: LoadedModel, encoding, i: int, variant: str, n_texts: int) -> list[MaskedCopy]:
    """The masked copies of sentence ``i`` of ``encoding``: one per token the tokenizer did
    not add (:func:`mlmtool.analysis.pll.masked_copies`); MlmtoolError when there is none."""
    words = word_ids_of(encoding, i, lm.tokenizer)  # None = a special token the tokenizer added
    copies = masked_copies(encoding["input_ids"][i], words, lm.mask_token_id, variant)
    if not copies:
        raise MlmtoolError(f"{'line %d: ' % (i + 1) if n_texts > 1 else ''}the text has no token to score")
    return copies


def score_pairs(lm: LoadedModel, pairs: Sequence, variant: str = VARIANTS[0],
                batch_size: int = BATCH_SIZE) -> PairsResult:
    """Score minimal pairs: a pair is right when the good sentence has the higher PLL.

    Args:
        lm: a model with a masked-LM head.
        pairs: ``(good, bad)`` or ``(good, bad, phenomenon)`` tuples, or the result of
            :func:`read_pairs` (whose line numbers are kept).
        variant, batch_size: as :func:`score_sentences`.

    Returns:
        A :class:`PairsResult` (``.correct``, ``.total``, ``.accuracy``, ``.by_phenomenon()``).

    Raises:
        MlmtoolError: no pairs, an empty side, a sentence longer than the model's limit (the
            message names the pair's line), or as :func:`score_sentences`.
    """
    rows = [_pair_row(p, n + 1) for n, p in enumerate(pairs)]
    if not rows:
        raise MlmtoolError("no minimal pairs to score")
    sentences = [s for r in rows for s in r[:2]]
    lengths = [len(ids) for ids in lm.tokenizer(sentences, truncation=False)["input_ids"]]
    for n, (_, _, _, line) in enumerate(rows):  # name the pair, not its place in the flat list
        for side, length in (("good", lengths[2 * n]), ("bad", lengths[2 * n + 1])):
            check_length(lm, length, f"{'line' if line else 'pair'} {line or n + 1}, {side} sentence: ")
    scores = score_sentences(lm, sentences, variant=variant, batch_size=batch_size)
    out = []
    for n, (good, bad, phenomenon, line) in enumerate(rows):
        g, b = scores[2 * n].pll, scores[2 * n + 1].pll
        out.append(PairScore(good=good, bad=bad, good_pll=g, bad_pll=b, correct=g > b, phenomenon=phenomenon,
                             line=line))
    return PairsResult(pairs=out, variant=variant)


def read_pairs(path: str | Path) -> list[tuple[str, str, str, int]]:
    """Read a minimal-pairs file: one pair per line, ``good<TAB>bad[<TAB>phenomenon]``.

    Blank lines and lines starting with ``#`` are skipped.

    Returns:
        ``(good, bad, phenomenon, line)`` per pair (``line`` counted from 1).

    Raises:
        MlmtoolError: the file is missing or not UTF-8, has no pairs, or a line has no TAB
            or an empty side (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise MlmtoolError(f"no such pairs file: '{path}'")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise MlmtoolError(f"'{path}' is not UTF-8 text") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" not in line:
            raise MlmtoolError(f"{path.name} line {n}: no TAB between the good and the bad sentence")
        parts = line.split("\t")
        good, bad = parts[0].strip(), parts[1].strip()
        if not good or not bad:
            raise MlmtoolError(f"{path.name} line {n}: the {'good' if not good else 'bad'} sentence is empty")
        out.append((good, bad, parts[2].strip() if len(parts) > 2 else "", n))
    if not out:
        raise MlmtoolError(f"'{path}' has no minimal pairs (one 'good<TAB>bad' per line)")
    return out


def _pair_row(pair, n: int) -> tuple[str, str, str, int]:
    """``(good, bad, phenomenon, line)`` from a 2-, 3- or 4-tuple; MlmtoolError for an empty side."""
    good, bad = str(pair[0]).strip(), str(pair[1]).strip()
    phenomenon = str(pair[2]) if len(pair) > 2 else ""
    line = int(pair[3]) if len(pair) > 3 else 0
    if not good or not bad:
        raise MlmtoolError(f"pair {line or n}: the {'good' if not good else 'bad'} sentence is empty")
    return good, bad, phenomenon, line


def _save_json(data: dict, path: str | Path) -> Path:
    """Write ``data`` as indented UTF-8 JSON to exactly ``path``; returns it as a :class:`Path`."""
    path = Path(path)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
