"""Every architecture of transformers' masked-LM mapping through the CLI, on tiny random models.

Each model (hidden 32, 2 layers, 4 heads, random weights) is built once per session from its
config, with a tokenizer of its real kind trained here on the corpus of ``conftest``
(WordPiece ``[MASK]``; byte-level BPE ``<mask>``; SentencePiece-Unigram ``▁`` with ``<mask>``
or ``[MASK]``; ModernBERT's BPE with ``[MASK]``; EuroBERT's ``<|mask|>``; XLM's
``<special1>``). Checked per architecture: the head located by
:func:`mlmtool.core.forward.mlm_head` gives the model's own logits (1e-5); ``predict`` at
``--max-pieces 1`` equals ``transformers.pipeline("fill-mask")``; predict --json,
--by-layer, score and embed exit 0; the masked-positions loss equals the model's loss and
``finetune --max-steps 2`` runs (slow). :data:`UNBUILDABLE` lists the mapping's
architectures left out, and why.

With ``MLMTOOL_ARCH_RESULTS=<file>`` the outcome of every (architecture, command) is
written there as JSON (:mod:`arch_results`); ``python -m scripts.models_table <file>`` turns it
into docs/models.md.
"""

from __future__ import annotations

import json

import pytest

import arch_results
from conftest import CORPUS, WORDS

pytestmark = pytest.mark.usefixtures("one_thread")

#: Architectures of the masked-LM mapping not tested here, and why.
UNBUILDABLE = {
    "bart": "sequence-to-sequence denoiser: its logits come from a decoder, not a masked-LM head",
    "mbart": "sequence-to-sequence denoiser (as bart)",
    "mvp": "sequence-to-sequence denoiser (as bart)",
    "perceiver": "byte-level latent model: its outputs are not one hidden state per input token",
    "modernvbert": "vision-language model: its text config is nested and ignores a tiny config",
    "ultravbert": "vision-language model (as modernvbert)",
    "xmod": "needs a language adapter chosen per input (set_default_language)",
}

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64)

#: Config settings a tiny model of the architecture needs besides :data:`SMALL`.
EXTRA = {
    "funnel": dict(num_hidden_layers=None, block_sizes=[1, 1], num_decoder_layers=1, d_model=32,
                   n_head=4, d_head=8, d_inner=64),
    "mobilebert": dict(embedding_size=16, intra_bottleneck_size=32, true_hidden_size=32,
                       num_feedforward_networks=1),
    "squeezebert": dict(embedding_size=32),
    "reformer": dict(axial_pos_embds_dim=(16, 16), axial_pos_shape=(8, 8), attn_layers=["local", "local"],
                     feed_forward_size=64),
    "rembert": dict(input_embedding_size=32, output_embedding_size=32),
    "modernbert": dict(global_attn_every_n_layers=1, local_attention=16),
    "eurobert": dict(num_key_value_heads=4),
}

#: The tokenizer kind of each architecture's released checkpoints (default ``wordpiece``).
KIND = {
    **dict.fromkeys(["roberta", "data2vec-text", "longformer", "ibert", "luke", "jina_embeddings_v3",
                     "roberta-prelayernorm", "mpnet", "esm", "esmc", "reformer"], "bpe"),
    **dict.fromkeys(["camembert", "xlm-roberta", "xlm-roberta-xl"], "unigram"),
    **dict.fromkeys(["albert", "deberta-v2", "rembert", "big_bird"], "unigram-MASK"),
    "deberta": "bpe-MASK",
    **dict.fromkeys(["modernbert", "ultrabert", "neomme"], "bpe-MASK"),
    "eurobert": "eurobert",
    **dict.fromkeys(["xlm", "flaubert"], "xlm"),
}

#: Special tokens of each kind: (cls/bos, sep/eos, pad, unk, mask).
SPECIALS = {
    "wordpiece": ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"),
    "bpe": ("<s>", "</s>", "<pad>", "<unk>", "<mask>"),
    "bpe-MASK": ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"),
    "unigram": ("<s>", "</s>", "<pad>", "<unk>", "<mask>"),
    "unigram-MASK": ("[CLS]", "[SEP]", "<pad>", "<unk>", "[MASK]"),
    "eurobert": ("<|begin_of_text|>", "<|end_of_text|>", "<|pad|>", "<|unk|>", "<|mask|>"),
    "xlm": ("<s>", "</s>", "<pad>", "<unk>", "<special1>"),
}


def _architectures() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return [a for a in MODEL_FOR_MASKED_LM_MAPPING_NAMES if a not in UNBUILDABLE]


ARCHS = _architectures()


def build_tokenizer(kind: str):
    """A ``PreTrainedTokenizerFast`` of ``kind`` trained on the test corpus (about 150 entries)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    cls, sep, pad, unk, mask = SPECIALS[kind]
    specials = [cls, pad, sep, unk, mask]
    texts = CORPUS * 20 + [" ".join(WORDS)] * 5
    if kind.startswith("unigram"):
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=150, special_tokens=specials, unk_token=unk,
                                          show_progress=False)
    elif kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=150, special_tokens=specials, show_progress=False)
    else:  # byte-level BPE (RoBERTa, ModernBERT, EuroBERT, XLM here)
        tok = Tokenizer(models.BPE(unk_token=None if kind != "xlm" else unk))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B {sep}",
        special_tokens=[(t, tok.token_to_id(t)) for t in (cls, sep)])
    from tokenizers import AddedToken

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, cls_token=cls, bos_token=cls, sep_token=sep,
                                   eos_token=sep, pad_token=pad, unk_token=unk,
                                   mask_token=AddedToken(mask, lstrip=kind.startswith("bpe"), normalized=False))
    return fast


def build_model(arch: str, tok):
    """A tiny random ``*ForMaskedLM`` of ``arch`` matching ``tok``'s vocabulary and specials."""
    import torch
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    kw = dict(SMALL, vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
              eos_token_id=tok.sep_token_id, cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
              mask_token_id=tok.mask_token_id)
    kw.update(EXTRA.get(arch, {}))
    config = CONFIG_MAPPING[arch](**{k: v for k, v in kw.items() if v is not None})
    torch.manual_seed(0)
    return getattr(transformers, MODEL_FOR_MASKED_LM_MAPPING_NAMES[arch])(config).eval()


@pytest.fixture(scope="session")
def arch_dirs(tmp_path_factory):
    """``arch -> folder`` of its saved tiny model and tokenizer, each built on first use."""
    cache: dict[str, object] = {}
    root = tmp_path_factory.mktemp("archs")

    def get(arch):
        if arch not in cache:
            tok = build_tokenizer(KIND.get(arch, "wordpiece"))
            path = root / arch
            build_model(arch, tok).save_pretrained(path)
            tok.save_pretrained(path)
            cache[arch] = path
        return cache[arch]
    return get


@pytest.fixture(scope="session", autouse=True)
def _write_results():
    """Merge the recorded outcomes into ``$MLMTOOL_ARCH_RESULTS`` at the end of the session, if set
    (:mod:`arch_results`)."""
    arch_results.UNBUILDABLE.update(UNBUILDABLE)
    yield
    arch_results.write()


#: Architectures run through every command without ``--runslow``-style markers: those the
#: issue names (ALBERT, ELECTRA, ModernBERT, DeBERTa-v2, XLM, EuroBERT) and the reference three.
CORE = {"bert", "roberta", "distilbert", "albert", "electra", "modernbert", "deberta-v2", "xlm", "eurobert",
        "convbert", "funnel"}
TEXT = "the [MASK] sat on the mat ."


def _param(archs):
    return [pytest.param(a, marks=() if a in CORE else pytest.mark.slow) for a in archs]


def _invoke(runner, arch, name, args):
    from mlmtool.cli import cli

    result = runner.invoke(cli, args)
    arch_results.record(arch, name, result)
    return result


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a == "luke" else a for a in ARCHS])
def test_head_parity_and_predict_equals_pipeline(arch, arch_dirs, runner):
    """The located head on the last hidden state gives the model's logits (1e-5), and
    ``predict --max-pieces 1 --json`` gives the fill-mask pipeline's top 5 (ids and scores)."""
    import torch
    from transformers import pipeline

    from mlmtool.core.forward import run_batch
    from mlmtool.models import load

    lm = load(str(arch_dirs(arch)))
    assert lm.mask_token == SPECIALS[KIND.get(arch, "wordpiece")][4]
    ids = torch.tensor([lm.tokenizer("the cat sat on the mat .")["input_ids"]])
    att = torch.ones_like(ids)
    rows, cols = torch.nonzero(att.bool(), as_tuple=True)
    with torch.no_grad():
        ours = run_batch(lm.model, ids, att, rows=rows, cols=cols).logits
        theirs = type(lm.model).forward(lm.model, input_ids=ids, attention_mask=att).logits[0]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)

    r = _invoke(runner, arch, "predict --json", ["predict", "-m", str(arch_dirs(arch)), "--json", "--max-pieces", "1",
                                          "-k", "5", TEXT])
    assert r.exit_code == 0, r.output
    got = [(c["token_id"], c["score"]) for c in json.loads(r.output)["masks"][0]["candidates"]]
    fill = pipeline("fill-mask", model=lm.model, tokenizer=lm.tokenizer, top_k=5, device="cpu")
    want = [(p["token"], p["score"]) for p in fill(TEXT.replace("[MASK]", lm.mask_token))]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[1] for g in got] == pytest.approx([w[1] for w in want], abs=1e-5)


@pytest.mark.parametrize("arch", _param(ARCHS))
def test_commands_exit_0_or_refuse_in_one_line(arch, arch_dirs, runner):
    """predict (words, default), predict --by-layer, score and embed: exit 0, or exit 2 with one
    line naming the reason (Funnel's pooled and Reformer's two-stream layers for --by-layer);
    no printed prediction is a special token."""
    model = str(arch_dirs(arch))
    r = _invoke(runner, arch, "predict", ["predict", "-m", model, "-k", "3", TEXT])
    assert r.exit_code == 0, r.output
    from mlmtool.models import load

    specials = [t for t in load(model).tokenizer.all_special_tokens if t]
    assert not any(s in line for line in r.output.splitlines() for s in specials), r.output
    r = _invoke(runner, arch, "predict --by-layer", ["predict", "--by-layer", "-m", model, TEXT])
    if r.exit_code != 0:
        assert arch in {"funnel", "reformer"} and "layer-wise predictions" in r.output
    assert _invoke(runner, arch, "score", ["score", "-m", model, "the cat sat on the mat ."]).exit_code == 0
    r = _invoke(runner, arch, "embed", ["embed", "-m", model, "-o", "emb", "the cat sat on the mat ."])
    if r.exit_code != 0:
        assert arch in {"funnel", "reformer"} and "every layer" in r.output


FINETUNE_CORE = {"bert", "albert", "electra", "modernbert", "xlm", "convbert"}


@pytest.mark.parametrize("arch", [pytest.param(a, marks=() if a in FINETUNE_CORE else pytest.mark.slow)
                                  for a in ARCHS])
def test_masked_loss_parity_and_finetune(arch, arch_dirs, runner, tmp_path):
    """The masked-positions-only loss equals the model's own loss (1e-5); ``finetune
    --max-steps 2`` exits 0 and saves a model that predicts."""
    import torch

    from mlmtool.models import load
    from mlmtool.training.loss import masked_lm_loss

    lm = load(str(arch_dirs(arch)))
    ids = torch.tensor([lm.tokenizer("the cat sat on the mat .")["input_ids"]])
    att = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[0, 2:5] = ids[0, 2:5]
    with torch.no_grad():
        loss_sum, n = masked_lm_loss(lm.model, ids, att, labels)
        ref = type(lm.model).forward(lm.model, input_ids=ids, attention_mask=att, labels=labels).loss
    assert n == 3
    assert float(loss_sum) / n == pytest.approx(float(ref), abs=1e-5)

    (tmp_path / "c.txt").write_text("\n".join(CORPUS * 3) + "\n", encoding="utf-8")
    r = _invoke(runner, arch, "finetune", ["finetune", str(tmp_path / "c.txt"), "-m", str(arch_dirs(arch)),
                                           "-o", str(tmp_path / "out"), "--max-steps", "2", "-b", "4"])
    assert r.exit_code == 0, r.output
    assert _invoke(runner, arch, "predict (finetuned)",
                   ["predict", "-m", str(tmp_path / "out"), TEXT]).exit_code == 0


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["albert", "electra", "modernbert", "xlm", "eurobert", "deberta-v2", "convbert"])
@pytest.mark.parametrize("how", ["--lora", "--from-scratch"])
def test_finetune_lora_and_from_scratch(arch, how, arch_dirs, runner, tmp_path):
    """``--lora 4`` (LoRA on each architecture's query/value projections, :data:`LORA_TARGETS`)
    and ``--from-scratch`` run 2 steps on each architecture."""
    (tmp_path / "c.txt").write_text("\n".join(CORPUS * 3) + "\n", encoding="utf-8")
    extra = ["--lora", "4"] if how == "--lora" else ["--from-scratch", "--layers", "2", "--heads", "2",
                                                     "--hidden", "32"]
    r = _invoke(runner, arch, "finetune " + how, ["finetune", str(tmp_path / "c.txt"), "-m", str(arch_dirs(arch)),
                                                  "-o", str(tmp_path / "out"), "--max-steps", "2", "-b", "4", *extra])
    assert r.exit_code == 0, r.output
