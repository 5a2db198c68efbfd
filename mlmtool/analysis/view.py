"""What the interactive page shows for a sentence: predictions, or attention and a note.

One rule, used by ``mlmtool view``, ``mlmtool predict --html/-o``, the shell and ``mlmtool
serve``: a text with a ``[MASK]`` on a model with a trained masked-LM head gets predictions,
and the attention comes from the predictions' first forward pass (the model runs once);
otherwise the attention alone, with a one-line note saying why (:func:`prediction_note`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..defaults import TOP_K
from ..models import LoadedModel
from ..tokens import USER_MASK, to_model_text

if TYPE_CHECKING:
    from .attention import AttentionResult
    from .fill import Prediction


class ViewInputs(NamedTuple):
    """The data of one page: ``attention, prediction, note = view_inputs(lm, text)``.

    Attributes:
        attention: :class:`~mlmtool.analysis.attention.AttentionResult`, weights
            ``float32 [layers, heads, seq, seq]``.
        prediction: :class:`~mlmtool.analysis.fill.Prediction`, or None when there are none.
        note: why there are no predictions (one line), or None when there are.
    """

    attention: AttentionResult
    prediction: Prediction | None
    note: str | None


def prediction_note(lm: LoadedModel, text: str, mask_required: bool = False) -> str | None:
    """Why ``text`` gets no predictions from ``lm``, in one line; None when it gets them.

    Args:
        lm: a model from :func:`mlmtool.load`.
        text: one sentence (``[MASK]`` optional).
        mask_required: False (default): a text without a mask gets a note. True: the mask is
            not checked here (the prediction then raises the library's "no mask" error, as
            ``mlmtool predict`` does); only a missing masked-LM head gets a note.

    Returns:
        The note (no mask; or no trained masked-LM head), or None.
    """
    if not mask_required and lm.mask_token_id not in lm.tokenizer(to_model_text(text, lm.mask_token))["input_ids"]:
        return f"No {USER_MASK} in the sentence, so no predictions: attention only."
    if not lm.has_mlm_head:
        return (f"No predictions: model '{lm.name}' has no trained masked-LM head, and predictions "
                "need an MLM head. The attention below does not.")
    return None


def view_inputs(lm: LoadedModel, text: str, mask_required: bool = False, **options) -> ViewInputs:
    """Predictions and attention for ``text``, or the attention alone and a note.

    Runs the model once: :func:`~mlmtool.analysis.attention.predict_with_attention` when
    :func:`prediction_note` has no note, else :func:`~mlmtool.analysis.attention.attention`.

    Args:
        lm: a model from :func:`mlmtool.load`.
        text: one sentence (``[MASK]`` optional unless ``mask_required``).
        mask_required: as :func:`prediction_note` (True for ``mlmtool predict``).
        options: ``top_k``, ``max_pieces``, ``beam``, ``independent``, ``batch_size``
            (as :func:`mlmtool.predict`).

    Returns:
        :class:`ViewInputs` ``(attention, prediction or None, note or None)``.

    Raises:
        MlmtoolError: an empty text, one longer than the model's limit, bad options, or (with
            ``mask_required``) no mask.
    """
    from .attention import attention, predict_with_attention

    note = prediction_note(lm, text, mask_required)
    if note is not None:
        return ViewInputs(attention(lm, text), None, note)
    prediction, result = predict_with_attention(lm, text, **options)
    return ViewInputs(result, prediction, None)


def build_view(lm: LoadedModel, text: str, top_k: int = TOP_K, head_labels=None, precision: str = "uint8",
               words: bool | None = None):
    """Run the model on ``text`` (:func:`view_inputs`) and render the interactive page.

    Args:
        lm: a model from :func:`mlmtool.load`.
        text: one sentence (``[MASK]`` optional).
        top_k: candidates per mask (default :data:`mlmtool.defaults.TOP_K`).
        head_labels: head roles, layers/heads from 1 (see
            :func:`mlmtool.render.html_view.head_labels_from`).
        precision: ``"uint8"`` (default) or ``"float16"`` attention in the page.
        words: the page's "Words" toggle (attention aggregated to words, Clark et al. 2019):
            None (default) = pieces first, True = words first, False = no toggle (see
            :func:`mlmtool.render.html_view.render_view`). The page also carries the model's
            per-layer labels and attention notes (local layers, grouped-query attention).

    Returns:
        ``(view, note)``: the :class:`~mlmtool.render.html_view.HTMLView` and the note shown
        on the page (None when there are predictions).

    Raises:
        MlmtoolError: empty text, text longer than the model's limit, bad head labels.
    """
    from ..render.html_view import render_view

    result, prediction, note = view_inputs(lm, text, top_k=top_k)
    view = render_view(result, prediction, head_labels=head_labels, note=note, precision=precision, words=words)
    return view, note
