"""Tests for :mod:`mlmtool.training` and ``mlmtool finetune`` on tiny models (seconds each; the
ones that run the Trainer for several steps or epochs are marked ``slow``).

Properties checked: packing keeps every token; masking rate 15 % ± 1 % with the 80/10/10
split; whole-word masking masks all pieces of a word; the masked-positions loss equals
HF's full-logits loss; training lowers held-out perplexity; saved models reload and
predict; resume continues from the checkpoint step and ends where an uninterrupted run
ends; LoRA output is small and reloads; --trainable-layers freezes the rest; bad input is
one line, exit 2, nothing lost.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import CORPUS, write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = dict(max_length=32, learning_rate=3e-3, batch_size=16, progress=False, checkpoint_minutes=None)


def _config(corpus, model_dir, output="out", **kw):
    from mlmtool.training.config import FinetuneConfig

    return FinetuneConfig(corpus=[str(corpus)], model=str(model_dir), output=str(output), **(TRAIN | kw))


# ----------------------------------------------------------------------------- data


def test_pack_keeps_every_token_and_splits_long_lines(tiny_bert):
    from mlmtool.training.data import pack

    tok = tiny_bert.tokenizer
    long_line = " ".join(["the cat sat on the mat ."] * 12)  # 84 tokens > one chunk
    texts = ["the dog ran .", "", long_line, "we read a good book ."]
    out = pack({"text": texts}, tok, max_length=16, with_offsets=True)
    body = [t for ids, sp in zip(out["input_ids"], out["special_tokens_mask"])
            for t, s in zip(ids, sp) if not s]
    expected = [t for text in texts for t in tok(text, add_special_tokens=False)["input_ids"]]
    assert body == expected  # every text token, once, in order
    assert sum(out["n_tokens"]) == len(expected)
    assert all(len(ids) <= 16 for ids in out["input_ids"])
    assert all(ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id for ids in out["input_ids"])
    assert len(out["input_ids"]) >= 84 // 14
    for ids, offs in zip(out["input_ids"], out["offset_mapping"]):
        assert len(ids) == len(offs)


def test_masking_rate_is_bert_like(tiny_bert):
    """15 % ± 1 % of non-special tokens chosen; of those ~80 % [MASK], ~10 % random, ~10 % kept."""
    import torch

    from mlmtool.training.data import make_collator, pack

    tok = tiny_bert.tokenizer
    rng = random.Random(1)
    packed = pack({"text": [rng.choice(CORPUS) for _ in range(4000)]}, tok, 64, with_offsets=False)
    rows = [{"input_ids": i, "special_tokens_mask": s} for i, s in zip(packed["input_ids"], packed["special_tokens_mask"])]
    batch = make_collator(tok, 0.15, seed=0)([dict(r) for r in rows])
    original = torch.full_like(batch["input_ids"], tok.pad_token_id)
    special = torch.ones_like(original, dtype=torch.bool)  # padding counts as special
    for i, r in enumerate(rows):
        original[i, :len(r["input_ids"])] = torch.tensor(r["input_ids"])
        special[i, :len(r["input_ids"])] = torch.tensor(r["special_tokens_mask"]).bool()
    chosen = batch["labels"] != -100
    n = int((~special).sum())
    assert n > 20_000
    assert not (chosen & special).any()  # special tokens and padding never masked
    assert abs(int(chosen.sum()) / n - 0.15) < 0.01
    assert torch.equal(batch["labels"][chosen], original[chosen])  # labels are the original ids
    to_mask = (batch["input_ids"] == tok.mask_token_id) & chosen
    kept = (batch["input_ids"] == original) & chosen
    k = int(chosen.sum())
    assert abs(int(to_mask.sum()) / k - 0.8) < 0.03
    # random replacements can hit the original id by chance (1/vocab), so "kept" is ~10 % + a bit
    assert 0.07 < int(kept.sum()) / k < 0.15
    assert 0.07 < (k - int(to_mask.sum()) - int(kept.sum())) / k < 0.13


def test_whole_word_mask_masks_all_pieces(tiny_bert):
    from mlmtool.training.data import make_collator

    tok = tiny_bert.tokenizer
    text = "the dogs walking in the parked houses , cats played ."
    enc = tok([text] * 400, return_offsets_mapping=True, return_special_tokens_mask=True)
    rows = [{"input_ids": enc["input_ids"][i], "special_tokens_mask": enc["special_tokens_mask"][i],
             "offset_mapping": enc["offset_mapping"][i]} for i in range(400)]
    batch = make_collator(tok, 0.15, whole_word_mask=True, seed=0)(rows)
    word_ids = enc.word_ids(0)
    words = sorted({w for w in word_ids if w is not None})
    multi_masked, words_masked = 0, 0
    for i in range(400):
        labels = batch["labels"][i].tolist()
        for w in words:
            pos = [p for p, x in enumerate(word_ids) if x == w]
            chosen = [labels[p] != -100 for p in pos]
            assert all(chosen) or not any(chosen), f"word {w} partly masked in row {i}"
            if all(chosen):
                words_masked += 1
                multi_masked += len(pos) > 1
                assert all(batch["input_ids"][i, p] == tok.mask_token_id for p in pos)
        assert labels[0] == -100 and labels[len(word_ids) - 1] == -100  # [CLS], [SEP]
    assert multi_masked > 50  # "dog ##s", "walk ##ing", ... were masked whole
    assert abs(words_masked / (400 * len(words)) - 0.15) < 0.03


@pytest.mark.parametrize("which", ["tiny_bert", "tiny_roberta"])
def test_masked_positions_loss_equals_hf_loss(which, request):
    """Head at masked positions only == HF's loss from full-vocabulary logits (BERT cls, RoBERTa lm_head)."""
    import torch

    from mlmtool.training.loss import masked_lm_loss

    lm = request.getfixturevalue(which)
    torch.manual_seed(0)
    ids = torch.randint(5, lm.model.config.vocab_size, (3, 12))
    att = torch.ones_like(ids)
    att[2, 8:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5], labels[1, 7], labels[2, 3] = 7, 9, 11, 13
    with torch.no_grad():
        loss_sum, n = masked_lm_loss(lm.model, ids, att, labels)
        ref = lm.model(input_ids=ids, attention_mask=att, labels=labels).loss
    assert n == 4
    assert torch.allclose(loss_sum / n, ref, atol=1e-5)


# ----------------------------------------------------------------------------- training


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_finetune_learns_saves_and_reloads(corpus, tiny_bert_dir):
    from mlmtool.training.output import SUMMARY_NAME
    from mlmtool.training.train import finetune
    from mlmtool.models import load
    from mlmtool.analysis.predict import predict

    lines = []
    res = finetune(_config(corpus, tiny_bert_dir, epochs=3), report=lines.append)
    assert res.after.perplexity < res.before.perplexity
    epochs = [h for h in res.history if h.kind == "epoch"]
    assert [h.epoch for h in epochs] == [1, 2, 3]
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert sum(line.startswith("Epoch ") and ", Loss: " in line for line in lines) == 3
    out = Path("out")
    assert {"config.json", "model.safetensors", SUMMARY_NAME} <= {p.name for p in out.iterdir()}
    assert not Path("out.partial").exists()
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["corpus"]["bytes"] == corpus.stat().st_size
    assert summary["corpus"]["tokens"] > 0 and summary["tokens_seen"] > 0
    assert summary["after"]["perplexity"] < summary["before"]["perplexity"]
    assert summary["config"]["epochs"] == 3 and summary["steps"] == res.steps
    assert len([h for h in summary["history"] if h["kind"] == "epoch"]) == 3
    lm = load("out")
    assert lm.has_mlm_head
    pred = predict(lm, "the cat sat on the [MASK] .", top_k=3)
    assert len(pred.masks[0].candidates) == 3


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_resume_continues_from_the_checkpoint(corpus, tiny_bert_dir):
    """Interrupted at step 5 with a checkpoint at step 3: no model appears; --resume starts
    from step 3 with the checkpoint's weights, does the 5 remaining steps, and keeps the
    earlier run's history and held-out "before" numbers. (Not bit-identical to an
    uninterrupted run: the dataloader masks one batch ahead of each checkpoint.)"""
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from mlmtool.errors import MlmtoolError
    from mlmtool.training.train import finetune

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:
                raise KeyboardInterrupt

    class AtStart(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            self.step = state.global_step
            self.checksum = float(sum(p.detach().double().sum() for p in model.parameters()))

    kw = dict(max_steps=8, save_steps=3, eval_steps=2)
    with pytest.raises(KeyboardInterrupt):
        finetune(_config(corpus, tiny_bert_dir, **kw), callbacks=[Crash()])
    assert not Path("out").exists()  # no half-written model
    ckpt = Path("out.partial") / "checkpoint-3"
    assert ckpt.is_dir()
    saved = load_file(str(ckpt / "model.safetensors"))
    saved_sum = float(sum(t.double().sum() for k, t in saved.items() if k != "cls.predictions.decoder.weight"))
    with pytest.raises(MlmtoolError, match="interrupted run; continue it with resume"):
        finetune(_config(corpus, tiny_bert_dir, **kw))
    with pytest.raises(MlmtoolError, match="^resume: max_length was 32") as err:
        finetune(_config(corpus, tiny_bert_dir, resume=True, **(kw | {"max_length": 24})))
    assert err.value.param == "resume"
    start = AtStart()
    resumed = finetune(_config(corpus, tiny_bert_dir, resume=True, **kw), callbacks=[start])
    assert start.step == 3 and start.checksum == pytest.approx(saved_sum, rel=1e-9)
    assert resumed.resumed_from_step == 3 and resumed.steps == 8
    assert resumed.before is not None  # measured by the interrupted run
    assert [h.step for h in resumed.history if h.kind == "step"] == [2, 4, 6]  # 2 from before the crash
    assert Path("out/model.safetensors").is_file() and not Path("out.partial").exists()
    assert torch.isfinite(torch.tensor(resumed.after.loss))


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_lora_output_is_small_and_reloads(corpus, tiny_bert_dir):
    import torch
    from transformers import AutoModelForMaskedLM

    from mlmtool.training.train import finetune
    from mlmtool.models import load

    lm = load(str(tiny_bert_dir))
    res = finetune(_config(corpus, tiny_bert_dir, lora=2, epochs=1), lm=lm)
    files = {p.name for p in Path("out").iterdir()}
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    adapter = Path("out/adapter_model.safetensors").stat().st_size
    assert adapter < 0.2 * (tiny_bert_dir / "model.safetensors").stat().st_size
    assert res.trainable_parameters < 0.2 * res.total_parameters
    reloaded = AutoModelForMaskedLM.from_pretrained("out").eval()  # base from adapter_config + adapters
    ids = torch.tensor([lm.tokenizer("the cat sat on the [MASK] .")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, lm.model(ids).logits, atol=1e-5)
    via_loader = load("out")  # the one loader merges the adapters into the start model
    assert via_loader.has_mlm_head and via_loader.name == "out"
    with torch.no_grad():
        assert torch.allclose(via_loader.model(ids).logits, lm.model(ids).logits, atol=1e-5)


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_encoder_without_head_gets_tied_head_and_lora_saves_it(corpus, tiny_encoder_dir):
    """A head-less encoder (like minilm) is trained into a fill-mask model; with LoRA the fresh
    head's transform is saved with the adapters, and its decoder stays tied to the embeddings."""
    import torch
    from transformers import AutoModelForMaskedLM

    from mlmtool.training.train import finetune
    from mlmtool.models import load

    lm = load(str(tiny_encoder_dir))
    assert not lm.has_mlm_head
    res = finetune(_config(corpus, tiny_encoder_dir, epochs=2), lm=lm)
    assert res.after.loss < res.before.loss
    full = load("out")
    assert full.has_mlm_head
    assert full.model.cls.predictions.decoder.weight is full.model.get_input_embeddings().weight

    lm2 = load(str(tiny_encoder_dir))
    finetune(_config(corpus, tiny_encoder_dir, output="lora", lora=2, epochs=1), lm=lm2)
    config = json.loads(Path("lora/adapter_config.json").read_text())
    assert any("transform" in m for m in config["modules_to_save"])
    reloaded = AutoModelForMaskedLM.from_pretrained("lora").eval()
    ids = torch.tensor([lm2.tokenizer("the cat sat on the [MASK] .")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, lm2.model(ids).logits, atol=1e-5)


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_trainable_layers_freezes_the_rest(corpus, tiny_bert_dir):
    from safetensors.torch import load_file

    from mlmtool.training.train import finetune

    res = finetune(_config(corpus, tiny_bert_dir, trainable_layers=1, epochs=1))
    before = load_file(str(tiny_bert_dir / "model.safetensors"))
    after = load_file("out/model.safetensors")
    same = lambda k: bool((before[k] == after[k]).all())  # noqa: E731
    assert same("bert.embeddings.word_embeddings.weight")
    assert all(same(k) for k in before if k.startswith(("bert.encoder.layer.0.", "bert.embeddings.")))
    assert not same("bert.encoder.layer.1.attention.self.query.weight")
    assert not same("cls.predictions.transform.dense.weight")
    assert res.trainable_parameters < res.total_parameters


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_from_scratch_uses_sizes_and_tokenizer(corpus, tiny_bert_dir):
    from mlmtool.training.train import finetune
    from mlmtool.models import load

    res = finetune(_config(corpus, tiny_bert_dir, from_scratch=True, layers=1, heads=2, hidden=16, epochs=2))
    lm = load("out")
    cfg = lm.model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size) == (1, 2, 16)
    assert cfg.vocab_size == len(lm.tokenizer)
    assert res.after.loss < res.before.loss


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_max_minutes_stops_cleanly_and_saves(corpus, tiny_bert_dir):
    from mlmtool.training.train import finetune

    res = finetune(_config(corpus, tiny_bert_dir, epochs=50, max_minutes=1e-4))
    assert res.stopped_early and 1 <= res.steps < 50
    assert res.after is not None and res.history[-1].step == res.steps
    assert Path("out/model.safetensors").is_file() and not Path("out.partial").exists()


def test_overwrite_replaces_old_output_only_when_done(corpus, tiny_bert_dir):
    from mlmtool.training.train import finetune

    Path("out").mkdir()
    Path("out/old.txt").write_text("old")
    res = finetune(_config(corpus, tiny_bert_dir, max_steps=2, overwrite=True))
    names = {p.name for p in Path("out").iterdir()}
    assert "old.txt" not in names and "model.safetensors" in names
    assert not Path("out.partial").exists()
    # the result saves itself as the summary the run wrote, and loads back
    from mlmtool.training.output import SUMMARY_NAME, load_summary

    assert res.save("again.json") == Path("again.json")
    assert Path("again.json").read_text() == (Path("out") / SUMMARY_NAME).read_text()
    assert load_summary("again.json") == res.to_dict()


@pytest.mark.slow  # the Trainer, several epochs or steps
@pytest.mark.parametrize("which", ["tiny_bert_dir", "tiny_roberta_dir"])
def test_whole_word_mask_paragraphs_and_roberta_train(which, tmp_path, request):
    """Blank-line paragraphs, whole-word masking through the Trainer, RoBERTa's lm_head."""
    from mlmtool.training.train import finetune

    rng = random.Random(3)
    paras = ["\n".join(rng.choice(CORPUS) for _ in range(3)) for _ in range(120)]
    corpus = tmp_path / "paras.txt"
    corpus.write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    res = finetune(_config(corpus, request.getfixturevalue(which), max_steps=6, whole_word_mask=True))
    assert res.corpus.sample_by == "paragraph"
    assert res.steps == 6 and res.after.loss < res.before.loss


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_eval_steps_logs_step_evaluations(corpus, tiny_bert_dir):
    from mlmtool.training.train import finetune

    res = finetune(_config(corpus, tiny_bert_dir, max_steps=6, eval_steps=2, eval_fraction=0.2))
    assert [h.step for h in res.history if h.kind == "step"] == [2, 4]
    assert res.history[-1].kind == "epoch" and res.history[-1].step == 6


# ----------------------------------------------------------------------------- command line


@pytest.mark.slow  # the Trainer, several epochs or steps
def test_cli_trains_and_prints_epochs(runner, corpus, tiny_bert_dir):
    from mlmtool.cli import cli

    r = runner.invoke(cli, ["finetune", str(corpus), "-m", str(tiny_bert_dir), "-o", "cli-out", "--epochs", "2",
                            "--max-length", "32", "--lr", "3e-3", "-q", "--checkpoint-minutes", "60"])
    assert r.exit_code == 0, r.output
    assert "Epoch 1, Loss: " in r.output and "Epoch 2, Loss: " in r.output
    assert "Held-out perplexity: " in r.output and " -> " in r.output
    assert Path("cli-out/model.safetensors").is_file()
    r = runner.invoke(cli, ["predict", "-m", "cli-out", "the cat sat on the [MASK] ."])
    assert r.exit_code == 0, r.output


def test_cli_reads_stdin(runner, tiny_bert_dir):
    from mlmtool.cli import cli

    text = "\n".join(random.Random(2).choice(CORPUS) for _ in range(200))
    r = runner.invoke(cli, ["finetune", "-", "-m", str(tiny_bert_dir), "-o", "o", "--max-steps", "2",
                            "--max-length", "32", "-q", "--json"], input=text)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)  # with --json, stdout is the JSON alone (progress on stderr)
    assert summary["steps"] == 2 and summary["corpus"]["bytes"] == len(text.encode())
    assert "Before training" in r.stderr


@pytest.mark.parametrize("case", ["missing", "empty", "binary", "latin1", "too-small", "epochs0", "output-file",
                                  "output-full", "directory", "lora-and-layers", "too-long"])
def test_cli_bad_input_is_one_line_exit_2(runner, tiny_bert_dir, tmp_path, case):
    from mlmtool.cli import cli

    args = ["finetune", "c.txt", "-m", str(tiny_bert_dir), "-o", "out", "--max-length", "32"]
    c = tmp_path / "c.txt"
    write_corpus(c)
    expect = {"missing": "not found", "empty": "empty", "binary": "binary", "latin1": "not UTF-8",
              "too-small": "too small", "epochs0": "--epochs", "output-file": "is a file",
              "output-full": "not empty", "directory": "is a directory",
              # library errors name the parameter; the command line shows its flag
              "lora-and-layers": "Error: --lora and --trainable-layers exclude each other",
              "too-long": "Error: --max-length 100 is more than model"}[case]
    if case == "missing":
        c.unlink()
    elif case == "empty":
        c.write_text("  \n\n")
    elif case == "binary":
        c.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    elif case == "latin1":
        c.write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    elif case == "too-small":
        c.write_text("the cat sat on the mat .\n")
    elif case == "epochs0":
        args += ["--epochs", "0"]
    elif case == "lora-and-layers":
        args += ["--lora", "2", "--trainable-layers", "1"]
    elif case == "too-long":
        args[-1] = "100"
    elif case == "output-file":
        Path("out").write_text("precious")
    elif case == "output-full":
        Path("out").mkdir()
        Path("out/keep.txt").write_text("precious")
    elif case == "directory":
        c.unlink()
        c.mkdir()
    r = runner.invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert expect in r.output
    assert "Traceback" not in r.output
    error_lines = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1
    if case == "output-file":
        assert Path("out").read_text() == "precious"
    if case == "output-full":
        assert Path("out/keep.txt").read_text() == "precious" and len(list(Path("out").iterdir())) == 1
    assert not Path("out.partial").exists()


# ----------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_minilm_becomes_a_fill_mask_model(tmp_path, minilm):
    """The real MiniLM encoder (no MLM head) trained a few steps: held-out loss drops, the
    saved model reloads through mlmtool.load with has_mlm_head=True and predicts."""
    from mlmtool.training.config import FinetuneConfig
    from mlmtool.training.train import finetune
    from mlmtool.models import load
    from mlmtool.analysis.predict import predict

    from scripts.benchmarks.bench_finetune import stdlib_docstrings

    corpus = tmp_path / "docs.txt"
    corpus.write_text(stdlib_docstrings(60_000), encoding="utf-8")
    res = finetune(FinetuneConfig(corpus=[str(corpus)], model="minilm", output="mini", max_steps=12,
                                  batch_size=8, max_length=64, learning_rate=2e-4, progress=False,
                                  checkpoint_minutes=None))
    assert res.after.loss < res.before.loss
    lm = load("mini")
    assert lm.has_mlm_head and lm.num_layers == 6
    pred = predict(lm, "The function returns a [MASK] of strings.", top_k=5)
    assert len(pred.masks[0].candidates) == 5


def test_head_learning_rate_gives_the_head_its_own_group(tiny_bert_dir):
    """The head's groups get head_learning_rate; weight decay follows Trainer's own rule
    (Trainer.get_decay_parameter_names: not biases, not LayerNorm)."""
    from transformers import Trainer, TrainingArguments

    from mlmtool.models import load
    from mlmtool.training.config import FinetuneConfig
    from mlmtool.training.model import head_lr_optimizer

    model = load(str(tiny_bert_dir)).model
    trainer = Trainer(model=model, args=TrainingArguments(output_dir="t", use_cpu=True, report_to="none"))
    decay = trainer.get_decay_parameter_names(model)
    assert "bert.encoder.layer.0.attention.self.query.weight" in decay
    assert not any(n.endswith("bias") or "LayerNorm" in n for n in decay)
    config = FinetuneConfig(corpus=["x"], learning_rate=1e-4, head_learning_rate=3e-3, weight_decay=0.01)
    opt = head_lr_optimizer(model, config, decay)
    head = {id(p) for p in model.cls.parameters()} - {id(model.get_input_embeddings().weight)}
    decays = {id(p) for n, p in model.named_parameters() if n in decay}
    for group in opt.param_groups:
        ids = {id(p) for p in group["params"]}
        assert ids <= head or not ids & head
        assert group["lr"] == (3e-3 if ids <= head else 1e-4)
        assert ids <= decays if group["weight_decay"] == 0.01 else not ids & decays
    assert head <= {id(p) for g in opt.param_groups for p in g["params"]}
    assert len(opt.param_groups) == 4


@pytest.mark.parametrize("kw, param, words", [
    (dict(epochs=0), "epochs", "epochs must be at least 1 (got 0)"),
    (dict(learning_rate=0.0), "learning_rate", "learning_rate must be positive (got 0.0)"),
    (dict(mlm_probability=1.0), "mlm_probability", "mlm_probability must be in (0, 1) (got 1.0)"),
    (dict(eval_fraction=1.0), "eval_fraction", "eval_fraction must be in [0, 1) (got 1.0)"),
    (dict(max_length=4), "max_length", "max_length must be at least 8 tokens (got 4)"),
    (dict(lora=2, trainable_layers=1), "lora", "lora and trainable_layers exclude each other"),
    (dict(from_scratch=True, hidden=30, heads=4), "hidden", "hidden (30) must be a multiple of heads (4)"),
])
def test_config_check_names_the_parameter(kw, param, words):
    from mlmtool.errors import MlmtoolError
    from mlmtool.training.config import FinetuneConfig

    with pytest.raises(MlmtoolError) as err:
        FinetuneConfig(corpus=["x"], **kw).check()
    assert str(err.value).startswith(words) and err.value.param == param


def test_cli_options_come_from_the_config():
    """Every FinetuneConfig field with flags is an option of the command, with the field's
    default and range; and the parsed options give back the default config."""
    import dataclasses

    import click

    from mlmtool.commands.finetune import config_from_options, finetune
    from mlmtool.training.config import FinetuneConfig

    by_name = {p.name: p for p in finetune.params}
    flagged = [f for f in dataclasses.fields(FinetuneConfig) if f.metadata.get("flags")]
    generated = {"quiet" if f.metadata.get("negate") else f.name for f in flagged}
    assert set(by_name) - generated == {"corpus", "model", "lang", "as_json"}  # shared grammar + --json
    for f in flagged:
        opt = by_name["quiet" if f.metadata.get("negate") else f.name]
        assert tuple(opt.opts + opt.secondary_opts) == f.metadata["flags"]
        if not opt.is_flag:
            assert opt.default == f.default
    assert by_name["epochs"].type.min == 1 and by_name["max_length"].type.min == 8
    ctx = finetune.make_context("finetune", ["c.txt"])
    values = {k: v for k, v in ctx.params.items() if k not in ("corpus", "as_json")}
    assert config_from_options(["c.txt"], values) == FinetuneConfig(corpus=["c.txt"])
    assert isinstance(by_name["lang"].type, click.Choice)
