"""Attention as each architecture really has it (issue 24): every masked-LM architecture of
transformers 5 (``MODEL_FOR_MASKED_LM_MAPPING_NAMES``) that can be built from a config, as a
tiny random model (hidden 32, 2 layers, 2-4 heads; ModernBERT 3 layers with a ±2 window so
layers 2 and 3 are local) saved with the tiny BERT vocabulary of ``conftest.py`` (the
attention commands do not depend on the tokenizer kind), each built once per session.

Each either works (rows sum to 1, heads = :func:`mlmtool.analysis.arch.attention_heads`,
local layers zero beyond their window) or refuses every attention command with one line that
names the reason, exit 2. Not built here:

* ``modernvbert``, ``ultravbert``: vision-language configs (``text_config`` +
  ``vision_config``); :func:`mlmtool.load` reads ``config.num_hidden_layers``, which they do
  not have (a loader matter of ``mlmtool/models.py``).
* ``perceiver``, ``bart``, ``mbart``, ``mvp``: their default sizes are large (Perceiver takes
  ~20 s to build); they are refused from the config alone, so only the rule is tested.

The CLI run of all five commands on every architecture is ``slow``; the fast tier runs them on
the architectures this issue is about and the library check on all.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import arch_results

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64, pad_token_id=0)

#: model_type → config overrides (on top of BASE) for a tiny model of it.
SPECS = {
    "albert": {}, "bert": {}, "camembert": {}, "data2vec-text": {}, "deberta": {}, "deberta-v2": {},
    "distilbert": {}, "electra": {}, "ernie": {}, "esm": {}, "esmc": {}, "flaubert": {}, "gte": {},
    "ibert": {}, "jina_embeddings_v3": {}, "layoutlm": {}, "luke": {}, "megatron-bert": {},
    "mpnet": {}, "nomic_bert": {}, "nystromformer": {}, "rembert": {}, "roberta": {},
    "roberta-prelayernorm": {}, "roc_bert": {}, "roformer": {}, "tapas": {}, "ultrabert": {}, "xlm": {},
    "xlm-roberta": {}, "xlm-roberta-xl": {}, "mra": {}, "yoso": {}, "fnet": {},
    "convbert": dict(num_attention_heads=4),  # head_ratio 2: 2 attention heads
    "eurobert": dict(num_attention_heads=4, num_key_value_heads=2),  # grouped-query attention
    "modernbert": dict(num_hidden_layers=3, local_attention=4, global_attn_every_n_layers=3),
    "neomme": dict(num_key_value_heads=2, head_dim=16, embedding_rank=16),
    "mobilebert": dict(embedding_size=32, intra_bottleneck_size=32, true_hidden_size=32, num_feedforward_networks=1),
    "squeezebert": dict(embedding_size=32),  # returns scores; mlmtool applies the softmax
    "xmod": dict(languages=["en_XX"], default_language="en_XX"),
    "big_bird": dict(attention_type="original_full"),
    "big_bird-sparse": dict(attention_type="block_sparse"),
    "longformer": dict(attention_window=4),
    "funnel": dict(block_sizes=[1, 1], d_model=32, n_head=2, d_head=16, d_inner=64, pad_token_id=0),
    "reformer": dict(hidden_size=32, num_attention_heads=2, attention_head_size=16, attn_layers=["local", "lsh"],
                     axial_pos_shape=[8, 8], axial_pos_embds_dim=[16, 16], feed_forward_size=64, is_decoder=False,
                     max_position_embeddings=64, pad_token_id=0),
}
#: Configs that take their sizes under other names (SPECS only, no BASE).
STANDALONE = {"funnel", "reformer"}
NOT_BUILT = {"modernvbert": "vision-language config: mlmtool.load reads config.num_hidden_layers",
             "ultravbert": "vision-language config: mlmtool.load reads config.num_hidden_layers",
             "perceiver": "large default size; refused from its config", "bart": "encoder-decoder; refused from its config",
             "mbart": "encoder-decoder; refused from its config", "mvp": "encoder-decoder; refused from its config"}
#: Architectures whose attention commands refuse, and a word of the reason.
REFUSED = {"funnel": "pools", "longformer": "band", "reformer": "LSH", "fnet": "Fourier", "mra": "approximation",
           "yoso": "hashing", "big_bird-sparse": "block-sparse"}
#: Run through every command in the fast tier (the rest: ``slow``).
FAST = ["bert", "convbert", "modernbert", "eurobert", "squeezebert", "funnel", "longformer"]
SENTENCES = ["the cat sat on the mat .", "the dog ran in the park .", "she opened the door and let the cat out ."]
LONG = "the cat sat on the mat and the dog ran in the park ."
#: The command each run of :func:`_run_commands` stands for, as docs/models.md names it.
COMMAND_NAMES = {"attention": "attention -o", "rollout": "attention --summary rollout", "heads": "heads",
                 "view": "view --html", "compare": "compare"}


@pytest.fixture(scope="session", autouse=True)
def _write_results():
    """Merge the recorded outcomes into ``$MLMTOOL_ARCH_RESULTS`` at the end, if set (:mod:`arch_results`)."""
    yield
    arch_results.write()


def test_every_masked_lm_architecture_is_covered():
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    covered = {k.removesuffix("-sparse") for k in SPECS} | set(NOT_BUILT)
    assert set(MODEL_FOR_MASKED_LM_MAPPING_NAMES) <= covered


@pytest.fixture(scope="session")
def arch_dir(tiny_bert_dir, tmp_path_factory):
    """``arch_dir(kind)`` → the folder of a tiny random model of ``kind``, built once."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    root, built = tmp_path_factory.mktemp("arch"), {}

    def get(kind: str):
        if kind not in built:
            sizes = SPECS[kind] if kind in STANDALONE else {**BASE, **SPECS[kind]}
            config = AutoConfig.for_model(kind.removesuffix("-sparse"), vocab_size=len(tok), **sizes)
            torch.manual_seed(0)
            model = AutoModelForMaskedLM.from_config(config)
            model.save_pretrained(root / kind)
            tok.save_pretrained(root / kind)
            built[kind] = root / kind
        return built[kind]

    return get


def _check_weights(lm, result):
    """Rows sum to 1, the head count is the architecture's, local layers stay in their window."""
    from mlmtool.analysis.arch import attention_heads

    att = result.attention
    n = len(result.tokens)
    assert att.shape == (lm.num_layers, attention_heads(lm), n, n)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-4)
    assert (att >= -1e-6).all()
    far = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    for layer, w in enumerate(result.local_window):
        if w is not None and (far > w).any():
            assert np.abs(att[layer][:, far > w]).max() < 1e-6, f"layer {layer + 1} reaches beyond ±{w}"


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_library_attention_or_refusal(kind, arch_dir):
    from mlmtool.analysis.arch import attention_support
    from mlmtool.analysis.attention import attention
    from mlmtool.errors import MlmtoolError
    from mlmtool.models import load

    lm = load(str(arch_dir(kind)))
    ok, reason = attention_support(lm)
    assert ok == (kind not in REFUSED)
    if not ok:
        assert REFUSED[kind] in reason
        with pytest.raises(MlmtoolError, match="no attention view"):
            attention(lm, LONG)
        return
    _check_weights(lm, attention(lm, LONG))


@pytest.mark.parametrize("kind", ["perceiver", "bart", "mbart", "mvp"])
def test_refused_from_config(kind):
    from transformers import AutoConfig

    from mlmtool.analysis.arch import attention_support

    ok, reason = attention_support(AutoConfig.for_model(kind))
    assert not ok and reason


def test_modernbert_local_layers(arch_dir):
    from mlmtool.analysis.attention import attention
    from mlmtool.analysis.rollout import attention_rollout
    from mlmtool.models import load

    result = attention(load(str(arch_dir("modernbert"))), LONG)
    assert result.local_window == [None, 2, 2]
    assert result.layer_labels == ["global", "local ±2", "local ±2"]
    data = result.to_dict()
    assert data["layer_labels"] == ["global", "local ±2", "local ±2"] and "2, 3" in data["notes"][0]
    summary = attention_rollout(result)
    assert any("local layers (2, 3" in n for n in summary.notes)
    np.testing.assert_allclose(summary.matrix.sum(1), 1.0, atol=1e-9)


def test_bert_results_say_nothing_new(tiny_bert):
    from mlmtool.analysis.attention import attention

    data = attention(tiny_bert, "the cat sat .").to_dict()
    assert "notes" not in data and "local_window" not in data


def test_eurobert_grouped_query_note(arch_dir):
    from mlmtool.analysis.heads.run import score_heads
    from mlmtool.models import load

    scores = score_heads(load(str(arch_dir("eurobert"))), SENTENCES)
    assert scores.num_heads == 4
    assert any("grouped-query" in n for n in scores.to_dict()["notes"])


def _run_commands(runner, path, tmp_path):
    """The five attention commands on the model at ``path``; returns the results by name."""
    from mlmtool.cli import cli

    (tmp_path / "s.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    m = ["-m", str(path)]
    runs = {
        "attention": ["attention", LONG, *m, "-o", str(tmp_path / "att")],
        "rollout": ["attention", LONG, *m, "--summary", "rollout", "--json"],
        "heads": ["heads", *m, "-i", str(tmp_path / "s.txt"), "--json", "-o", str(tmp_path / "heads")],
        "view": ["view", "the [MASK] sat on the mat .", *m, "--html", str(tmp_path / "v.html")],
        "compare": ["compare", "the cat sat on the mat .", "the dog sat on the mat .", *m, "--json"],
    }
    return {name: runner.invoke(cli, args) for name, args in runs.items()}


def _check_commands(kind, results, heads):
    for name, res in results.items():
        if kind in REFUSED:
            assert res.exit_code == 2, (name, res.output)
            line = [x for x in res.output.splitlines() if "no attention view" in x]
            assert len(line) == 1 and REFUSED[kind] in line[0] and "Traceback" not in res.output, (name, res.output)
            continue
        assert res.exit_code == 0, (kind, name, res.output, res.exception)
    if kind in REFUSED:
        return
    out = results["rollout"].stdout
    matrix = np.array(json.loads(out[out.index("{"):])["matrix"])
    np.testing.assert_allclose(matrix.sum(1), 1.0, atol=1e-6)
    out = results["heads"].stdout
    assert json.loads(out[out.index("{"):])["num_heads"] == heads
    out = results["compare"].stdout
    assert json.loads(out[out.index("{"):])["num_heads"] == heads


def _commands_case(kind, arch_dir, runner, tmp_path):
    from mlmtool.analysis.arch import attention_heads
    from mlmtool.models import load

    path = arch_dir(kind)
    results = _run_commands(runner, path, tmp_path)
    for name, res in results.items():  # for docs/models.md (tests/arch_results.py)
        arch_results.record(kind, COMMAND_NAMES[name], res, strict=False)
    _check_commands(kind, results, attention_heads(load(str(path))))


@pytest.mark.parametrize("kind", FAST)
def test_commands_fast(kind, arch_dir, runner, tmp_path):
    _commands_case(kind, arch_dir, runner, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(set(SPECS) - set(FAST)))
def test_commands_all(kind, arch_dir, runner, tmp_path):
    _commands_case(kind, arch_dir, runner, tmp_path)
