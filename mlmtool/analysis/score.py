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

Batched: every masked copy of a sentence goes through one forward pass (unless there are
more than ``batch_size``), sentences of similar length share a pass (bucketed), and the vocabulary projection runs only at the one
masked position of each copy (:func:`mlmtool.core.forward.iter_forward` with one position
per copy), so no ``[copies, S, V]`` logits tensor is ever built.

Minimal pairs (BLiMP-style, Warstadt et al. 2020): a pair counts as right when the good
sentence has the higher PLL (:func:`score_pairs`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..core.forward import check_length, encode, iter_forward
from ..errors import MlmtoolError
from ..models import LoadedModel
from ..tokens import display_token, word_ids_of

#: The scoring variants: Salazar et al. 2020 and Kauf & Ivanova 2023.
VARIANTS = ("original", "word-l2r")


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
    variant: str = "original"

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``: ``text``, ``pll``, ``pppl``, ``variant``, ``tokens`` (``token``, ``log_prob``, ``position``)."""
        return asdict(self)


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
    variant: str = "original"

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


def score_sentences(lm: LoadedModel, texts: str | Sequence[str], variant: str = "original",
                    batch_size: int = 256) -> SentenceScore | list[SentenceScore]:
    """Pseudo-log-likelihood and pseudo-perplexity of each sentence (see the module docstring).

    Args:
        lm: a model from :func:`mlmtool.load` with a masked-LM head.
        texts: one sentence or a list.
        variant: ``"original"`` (default; Salazar et al. 2020) or ``"word-l2r"`` (Kauf &
            Ivanova 2023: the later pieces of the same word are masked too).
        batch_size: masked copies per forward pass (default 256); sentences of similar
            length share a pass, and all the copies of a sentence go through one pass unless
            they are more than ``batch_size`` (then they are cut, to bound the memory).

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
    if variant not in VARIANTS:
        raise MlmtoolError(f"variant must be one of {', '.join(VARIANTS)} (got '{variant}')", param="variant")
    if batch_size < 1:
        raise MlmtoolError(f"batch_size must be at least 1 (got {batch_size})", param="batch_size")
    encoding = encode(lm, items)
    tok = lm.tokenizer
    plans = []  # per sentence: (scored positions, mask sets)
    for i in range(len(items)):
        words = word_ids_of(encoding, i, tok)  # None = a special token the tokenizer added
        scored = [p for p, w in enumerate(words) if w is not None]
        if not scored:
            raise MlmtoolError(f"{'line %d: ' % (i + 1) if len(items) > 1 else ''}the text has no token to score")
        plans.append((scored, [_mask_set(p, scored, words, variant) for p in scored]))
    log_probs: list[list[float]] = [[] for _ in items]
    for group in _groups([len(e) for e in encoding["input_ids"]], [len(p[0]) for p in plans], batch_size):
        copies, cols, owner = [], [], []
        for i, start, end in group:
            ids = encoding["input_ids"][i]
            for p, masked in list(zip(*plans[i]))[start:end]:
                copy = list(ids)
                for q in masked:
                    copy[q] = lm.mask_token_id
                copies.append(copy)
                cols.append([p])
                owner.append((i, ids[p]))
        rows: list = [None] * len(copies)
        for f in iter_forward(lm, copies, positions=cols, batch_size=len(copies)):
            rows[f.index] = f.logits[0]
        import torch

        logits = torch.stack(rows)  # [copies, V]
        targets = torch.tensor([t for _, t in owner])
        lp = (logits.gather(1, targets[:, None])[:, 0] - logits.logsumexp(-1)).tolist()
        for (i, _), value in zip(owner, lp):
            log_probs[i].append(value)
    out = []
    for i, (text, (scored, _)) in enumerate(zip(items, plans)):
        ids = encoding["input_ids"][i]
        pieces = tok.convert_ids_to_tokens(ids)
        tokens = [TokenScore(token=display_token(pieces[p]), log_prob=lp, position=p)
                  for p, lp in zip(scored, log_probs[i])]
        pll = sum(t.log_prob for t in tokens)
        out.append(SentenceScore(text=text, pll=pll, pppl=math.exp(-pll / len(tokens)), tokens=tokens,
                                 variant=variant))
    return out[0] if single else out


def score_pairs(lm: LoadedModel, pairs: Sequence, variant: str = "original", batch_size: int = 256) -> PairsResult:
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


def _mask_set(p: int, scored: list[int], words: list[int | None], variant: str) -> list[int]:
    """Positions to mask when scoring position ``p``: ``p`` itself, and for ``word-l2r`` the
    later scored positions of the same word (minicons ``within_word_l2r``)."""
    if variant == "original" or words[p] is None:
        return [p]
    return [p] + [q for q in scored if q > p and words[q] == words[p]]


def _groups(lengths: list[int], copies: list[int], budget: int) -> list[list[tuple[int, int, int]]]:
    """Masked copies grouped for one forward pass each, as ``(sentence, first copy, end)``.

    Sentences are taken longest first (bucketing: a pass holds sentences of similar length)
    and as many whole sentences as fit ``budget`` copies share a pass; only a sentence with
    more copies than ``budget`` (more tokens than ``batch_size``) is cut over several passes,
    which bounds the memory of one pass.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[tuple[int, int, int]]] = []
    used = budget
    for i in order:
        if copies[i] > budget:
            groups += [[(i, a, min(a + budget, copies[i]))] for a in range(0, copies[i], budget)]
            used = budget
        elif used + copies[i] <= budget:
            groups[-1].append((i, 0, copies[i]))
            used += copies[i]
        else:
            groups.append([(i, 0, copies[i])])
            used = copies[i]
    return groups
