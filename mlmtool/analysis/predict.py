"""Fill-mask prediction: :func:`predict`, the front door to :mod:`mlmtool.analysis.fill`.

By default each ``[MASK]`` is filled with whole words of up to three pieces, and two or more
masks are filled jointly (top-k complete sentences); see :mod:`mlmtool.analysis.fill` for
the method and its sources. ``max_pieces=1, independent=True`` is piece-level fill, equal
to ``transformers.pipeline("fill-mask")`` on the same model and text (probabilities are the
softmax of the masked position's logits over the whole vocabulary; see
``transformers/pipelines/fill_mask.py``), but faster on many sentences: sentences are
bucketed by length, the encoder runs once per batch, and the masked-LM head runs only at
the masks (:mod:`mlmtool.core.forward`).
"""

from __future__ import annotations

from ..defaults import TOP_K
from ..models import LoadedModel
from .fill import (DEFAULT_BEAM, DEFAULT_MAX_PIECES, Candidate, MaskPrediction, Prediction, SentenceCandidate,
                   check_fill_options, fill_words)

__all__ = ["Candidate", "MaskPrediction", "Prediction", "SentenceCandidate", "predict", "predict_json",
           "check_top_k"]


def predict(lm: LoadedModel, texts: str | list[str], top_k: int = TOP_K, batch_size: int = 32, *,
            max_pieces: int = DEFAULT_MAX_PIECES, beam: int = DEFAULT_BEAM,
            independent: bool = False) -> Prediction | list[Prediction]:
    """Predict the top-k words for every ``[MASK]`` in one text or many.

    Args:
        lm: a model from :func:`mlmtool.load` with a masked-LM head.
        texts: one text or a list; ``[MASK]`` (or the model's own mask token) marks each
            word to guess.
        top_k: candidates per mask, and complete sentences with several masks
            (default :data:`mlmtool.defaults.TOP_K`).
        batch_size: sequences per forward pass (default 32), bucketed by length.
        max_pieces: the most vocabulary pieces one word may have (default 3); 1 gives
            piece-level fill, equal to the HF fill-mask pipeline.
        beam: beam width of the whole-word and several-mask search (default 2).
        independent: with several masks, only each mask's own list (the others left
            masked, as the HF pipeline), no joint sentences.

    Returns:
        A :class:`Prediction` for a single string (``.masks[i].candidates``, and
        ``.sentences`` with several masks), else a list in input order.

    Raises:
        NoMLMHeadError: the model has no trained masked-LM head.
        MlmtoolError: no mask, empty text, text longer than the model's limit, or
            ``top_k``/``max_pieces``/``beam`` below 1.
    """
    return fill_words(lm, texts, top_k=top_k, max_pieces=max_pieces, beam=beam, independent=independent,
                      batch_size=batch_size)


def predict_json(predictions: Prediction | list[Prediction]) -> dict | list[dict]:
    """The JSON of predictions: what ``mlmtool predict --json`` prints and ``POST /api/predict``
    of ``mlmtool serve`` returns (both call this one function, so the two cannot drift).

    Args:
        predictions: one :class:`Prediction` or a list.

    Returns:
        ``Prediction.to_dict()`` for one, a list of them for a list.
    """
    if isinstance(predictions, Prediction):
        return predictions.to_dict()
    return [p.to_dict() for p in predictions]


def check_top_k(top_k: int) -> None:
    """Raise :class:`MlmtoolError` unless ``top_k`` ≥ 1."""
    check_fill_options(top_k)
