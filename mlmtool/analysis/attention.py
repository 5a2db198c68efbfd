"""Attention weights of every layer and head for a text, as plain data.

The model runs here once; renderers (:mod:`mlmtool.render`) and analyses take the
:class:`AttentionResult` and never see the model (the BertViz ``head_view(attention,
tokens)`` split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.forward import encode, iter_forward
from ..defaults import TOP_K
from ..models import LoadedModel
from ..tokens import display_token, word_ids_of
from .arch import check_attention, layer_label, layout, to_weights


@dataclass
class AttentionResult:
    """Attention weights for one text.

    Attributes:
        text: the user's text.
        tokens: display strings of the input tokens, special tokens included
            (``[seq]``; BPE/SentencePiece markers removed, ``##`` kept).
        attention: ``float32 [layers, heads, seq, seq]``; ``attention[l, h, i, j]`` is how
            much token ``i`` (the attending token, row) attends to token ``j`` (column) in
            layer ``l + 1``, head ``h + 1``: indices count from 0 here, everything shown
            to users counts from 1. Each row sums to 1 (softmax).
        word_ids: ``[seq]`` index of the word each token belongs to (None for special
            tokens), from the fast tokenizer.
        special: ``[seq]`` True for special tokens (``[CLS]``, ``[SEP]``, ``<s>``...).
        model_name: the model's name, for titles.
        local_window: per layer (index 0 = layer 1), the half window ``w`` of a local
            sliding-window layer (its weights are zero where ``|i - j| > w``), None for a
            global layer; ``[]`` when every layer is global (:func:`mlmtool.analysis.arch.local_windows`).
        notes: one line per fact about this model's attention a reader should know (local
            layers, grouped-query attention); ``[]`` for BERT-like models.
        pieces: None for piece-level attention (what the model computes); for a word-level
            result (:func:`mlmtool.analysis.words.aggregate_words`) the token positions (from 0)
            of the pieces each row/column stands for, ``[U]`` lists.
    """

    text: str
    tokens: list[str]
    attention: np.ndarray
    word_ids: list[int | None]
    special: list[bool]
    model_name: str = ""
    local_window: list[int | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pieces: list[list[int]] | None = None

    @property
    def num_layers(self) -> int:
        """Number of layers (``attention.shape[0]``)."""
        return int(self.attention.shape[0])

    @property
    def num_heads(self) -> int:
        """Heads per layer (``attention.shape[1]``)."""
        return int(self.attention.shape[1])

    @property
    def layer_labels(self) -> list[str]:
        """Per layer ``"global"`` or ``"local ±w"`` (``[]`` when every layer is global), for
        diagram titles and the view's layer rows."""
        return [layer_label(w) for w in self.local_window]

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``; ``attention`` becomes nested lists ``[layers][heads][seq][seq]``.

        ``local_window`` and ``layer_labels`` (per layer) are present only for models with
        local layers, ``notes`` only when there are notes, ``pieces`` only for a word-level result."""
        out = {"text": self.text, "tokens": self.tokens, "attention": self.attention.tolist(),
               "word_ids": self.word_ids, "special": self.special, "model_name": self.model_name}
        if self.local_window:
            out["local_window"], out["layer_labels"] = list(self.local_window), self.layer_labels
        if self.notes:
            out["notes"] = list(self.notes)
        if self.pieces is not None:
            out["pieces"] = [list(p) for p in self.pieces]
        return out

    def save(self, path: str | Path) -> Path:
        """Write the result to exactly ``path`` as compressed NumPy (``.npz`` format, no suffix
        added): ``attention`` float32 and the token metadata as JSON. Read it back with
        :meth:`load`; returns the path."""
        import json

        path = Path(path)
        meta = {k: v for k, v in self.to_dict().items() if k != "attention"}
        with path.open("wb") as fh:
            np.savez_compressed(fh, attention=self.attention, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AttentionResult":
        """Read a file written by :meth:`save`."""
        import json

        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            meta.pop("layer_labels", None)
            return cls(attention=data["attention"].astype(np.float32), **meta)


def attention(lm: LoadedModel, texts: str | list[str], batch_size: int = 16, words: bool = False
              ) -> AttentionResult | list[AttentionResult]:
    """Run the encoder with ``output_attentions=True`` and return the weights.

    Args:
        lm: a model from :func:`mlmtool.load` (eager attention; no MLM head needed).
        texts: one text or a list; ``[MASK]`` is translated to the model's mask token.
        batch_size: texts per forward pass (default 16), bucketed by length; padding
            never reaches the returned matrices (each is cut to its own length).
        words: aggregate to words (default False; :func:`mlmtool.analysis.words.aggregate_words`,
            Clark et al. 2019: mean over the attending word's pieces, sum over the attended's).

    Returns:
        One :class:`AttentionResult` for a string, else a list in input order.

    Raises:
        MlmtoolError: the architecture gives no token x token attention
            (:func:`mlmtool.analysis.arch.check_attention`: Funnel, Longformer, ...), an empty
            text or one longer than the model's maximum length.
    """
    check_attention(lm)
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    encoding = encode(lm, items, need_mask=False)
    out: list[AttentionResult | None] = [None] * len(items)
    for f in iter_forward(lm, encoding["input_ids"], attentions=True, batch_size=batch_size):
        out[f.index] = attention_from(lm, items[f.index], encoding, f.index, f.attentions)
    if words:
        from .words import aggregate_words

        out = [aggregate_words(r) for r in out]
    return out[0] if single else out  # type: ignore[return-value]


def attention_from(lm: LoadedModel, text: str, encoding, i: int, weights: np.ndarray) -> AttentionResult:
    """Post-process one forward pass into an :class:`AttentionResult` (no model call).

    Args:
        encoding: the ``BatchEncoding`` of :func:`mlmtool.core.forward.encode`; i: the text's
            index in it; weights: ``float32 [L, H, S, S]`` for that text (SqueezeBERT's scores
            become weights here, :func:`mlmtool.analysis.arch.to_weights`).
    """
    ids = encoding["input_ids"][i]
    return make_result(lm, text, ids, word_ids_of(encoding, i, lm.tokenizer), weights)


def make_result(lm: LoadedModel, text: str, ids, word_ids: list[int | None], weights: np.ndarray
                ) -> AttentionResult:
    """An :class:`AttentionResult` from token ids, their word ids and the forward core's
    ``float32 [L, H, S, S]`` weights, with the model's local windows and notes
    (:func:`mlmtool.analysis.arch.layout`)."""
    shape = layout(lm)
    return AttentionResult(text=text, tokens=[display_token(t) for t in lm.tokenizer.convert_ids_to_tokens(ids)],
                           attention=np.ascontiguousarray(to_weights(lm, weights), dtype=np.float32),
                           word_ids=list(word_ids), special=[w is None for w in word_ids], model_name=lm.name,
                           local_window=shape.local_window, notes=shape.notes)


def predict_with_attention(lm: LoadedModel, texts: str | list[str], top_k: int = TOP_K, batch_size: int = 16,
                           **fill_options):
    """Predictions and attention weights, the attention from the predictions' first forward pass.

    The first pass of the fill search (:func:`mlmtool.analysis.fill.fill_encoded`: the texts
    as given, each mask one token) also returns the attention weights, so ``predict --html``
    and ``-o`` never run the encoder again for the diagrams.

    Args:
        lm: a model with a masked-LM head; texts: one text or a list, each with a mask.
        top_k: candidates per mask (default :data:`mlmtool.defaults.TOP_K`).
        batch_size: sequences per forward pass (default 16).
        fill_options: ``max_pieces``, ``beam``, ``independent`` as :func:`mlmtool.predict`.

    Returns:
        ``(Prediction, AttentionResult)`` for a string, else a list of such pairs in input order.

    Raises:
        NoMLMHeadError, MlmtoolError: as :func:`mlmtool.predict`; MlmtoolError also when the
            architecture gives no token x token attention (:func:`mlmtool.analysis.arch.check_attention`).
    """
    from .fill import DEFAULT_BEAM, DEFAULT_MAX_PIECES, check_fill_options, fill_encoded

    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    lm.require_mlm_head()
    check_attention(lm)
    options = {"max_pieces": DEFAULT_MAX_PIECES, "beam": DEFAULT_BEAM, "independent": False, **fill_options}
    check_fill_options(top_k, options["max_pieces"], options["beam"])
    encoding = encode(lm, items, need_mask=True)
    preds, first = fill_encoded(lm, items, encoding["input_ids"], top_k=top_k, batch_size=batch_size,
                                attentions=True, **options)
    out = [(preds[i], attention_from(lm, items[i], encoding, i, first[i].attentions)) for i in range(len(items))]
    return out[0] if single else out


# The page's rule (predictions, or attention and a note) lives in :mod:`.view`; ``mlmtool.server``
# imports ``view_inputs`` from here.
from .view import view_inputs  # noqa: E402,F401
