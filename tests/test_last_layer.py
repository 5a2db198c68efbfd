"""The last layer run only where logits are wanted (:mod:`mlmtool.core.last_layer`).

On tiny random models of every BERT-like architecture: the fast path is taken, and its
logits at the asked positions equal the model's own forward (padding, several positions per
row, a row with none); other architectures and wrapped models run the full forward; the
stopping hook acts only in the thread that asked for it.
"""

from __future__ import annotations

import threading

import pytest

from mlmtool.core import last_layer
from mlmtool.core.forward import run_batch

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(vocab_size=97, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64, pad_token_id=1)

BERT_LIKE = ["bert", "roberta", "xlm-roberta", "camembert", "electra"]


def tiny(model_type: str):
    """A tiny randomly initialised ``AutoModelForMaskedLM`` of ``model_type`` (eager attention)."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    torch.manual_seed(0)
    extra = {"embedding_size": 32} if model_type in ("electra", "albert") else {}
    config = AutoConfig.for_model(model_type, **SMALL, **extra)
    return AutoModelForMaskedLM.from_config(config, attn_implementation="eager").eval()


def batch():
    """Two rows, the second padded: ``(input_ids [2, 9], attention_mask [2, 9])``."""
    import torch

    ids = torch.tensor([[0, 5, 6, 7, 8, 9, 10, 11, 2], [0, 12, 13, 14, 2, 1, 1, 1, 1]])
    return ids, (ids != 1).long()


@pytest.mark.parametrize("model_type", BERT_LIKE)
def test_logits_at_positions_equal_the_full_forward(model_type):
    import torch

    model = tiny(model_type)
    assert last_layer.capturable_layer(model.base_model) is model.base_model.encoder.layer[-1]
    ids, mask = batch()
    rows, cols = torch.tensor([0, 0, 1, 1]), torch.tensor([3, 8, 0, 2])  # two per row, the first token too
    with torch.inference_mode():
        full = model(input_ids=ids, attention_mask=mask).logits[rows, cols]
        got = run_batch(model, ids, mask, rows=rows, cols=cols).logits
        alone = run_batch(model, ids[1:], mask[1:], rows=torch.tensor([0]), cols=torch.tensor([2])).logits
    assert got.shape == full.shape == (4, SMALL["vocab_size"])
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone[0], full[3], atol=1e-5, rtol=1e-5)  # padding changes nothing


def test_the_layer_stopped_at_is_really_skipped():
    """The last layer's feed-forward sees only the asked positions (the work is really cut)."""
    import torch

    model = tiny("bert")
    seen = []
    handle = model.bert.encoder.layer[-1].intermediate.register_forward_hook(
        lambda module, args, out: seen.append(tuple(args[0].shape)))
    ids, mask = batch()
    try:
        with torch.inference_mode():
            run_batch(model, ids, mask, rows=torch.tensor([0, 1]), cols=torch.tensor([4, 2]))
            run_batch(model, ids, mask, rows=torch.tensor([0, 1]), cols=torch.tensor([4, 2]), hidden_states=True)
    finally:
        handle.remove()
    assert seen == [(2, 32), (2, 9, 32)]  # the positions alone; with hidden states, every token


def test_a_boolean_mask_gives_the_same_output():
    import torch

    model = tiny("bert")
    layer = model.bert.encoder.layer[-1]
    ids, mask = batch()
    rows, cols = torch.tensor([0, 1]), torch.tensor([1, 3])
    with torch.inference_mode():
        hidden, additive = last_layer.hidden_before_last(model.bert, layer, input_ids=ids, attention_mask=mask)
        assert additive.dim() == 4 and additive.dtype == torch.float32
        want = layer(hidden, additive)[rows, cols]
        as_float = last_layer.last_layer_at(layer, hidden, additive, rows, cols)
        as_bool = last_layer.last_layer_at(layer, hidden, additive == 0, rows, cols)
    torch.testing.assert_close(as_float, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(as_bool, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", ["distilbert", "albert", "deberta-v2"])
def test_other_architectures_run_the_full_forward(model_type):
    import torch

    model = tiny(model_type)
    assert last_layer.capturable_layer(model.base_model) is None
    ids, mask = batch()
    rows, cols = torch.tensor([0, 1]), torch.tensor([2, 3])
    with torch.inference_mode():
        full = model(input_ids=ids, attention_mask=mask).logits[rows, cols]
        got = run_batch(model, ids, mask, rows=rows, cols=cols).logits
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)


def test_wrapped_and_decoder_models_are_not_captured():
    from mlmtool.server.worker import ModelGate, _Guarded

    model = tiny("bert")
    assert last_layer.capturable_layer(_Guarded(model.base_model, ModelGate())) is None
    model.config.is_decoder = True
    assert last_layer.capturable_layer(model.base_model) is None


def test_the_hook_stops_only_the_thread_that_asked():
    """While this thread is stopping at the last layer, another thread's forward on the same
    model runs to the end (the server shares one model between threads)."""
    import torch

    model = tiny("bert")
    layer = model.bert.encoder.layer[-1]
    ids, mask = batch()
    with torch.inference_mode():
        last_layer.hidden_before_last(model.bert, layer, input_ids=ids, attention_mask=mask)  # registers
        want = model(input_ids=ids, attention_mask=mask).logits
    results = []

    def other():
        with torch.inference_mode():
            results.append(model(input_ids=ids, attention_mask=mask).logits)

    last_layer._local.layer = layer  # as during hidden_before_last in this thread
    try:
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        with pytest.raises(last_layer._LastLayerInput), torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)  # ... while this thread is stopped
    finally:
        last_layer._local.layer = None
    assert len(results) == 1
    torch.testing.assert_close(results[0], want)
