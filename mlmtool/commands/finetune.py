"""``mlmtool finetune``: adapt a masked language model to a text file (or train one from scratch)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import click

from ._common import model_options, overwrite_option


def _minutes(seconds: float) -> str:
    """``2 min 03 s`` / ``41.2 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


@click.command()
@click.argument("corpus", nargs=-1, required=True, metavar="CORPUS...")
@model_options
@click.option("-o", "--output", default="finetuned-model", show_default=True, type=click.Path(),
              help="Directory for the trained model (written only when training is complete).")
@click.option("-e", "--epochs", default=3, show_default=True, type=click.IntRange(1, None),
              help="Passes over the training text.")
@click.option("-b", "--batch-size", default=16, show_default=True, type=click.IntRange(1, None),
              help="Chunks per optimizer step (per process).")
@click.option("--learning-rate", "--lr", "learning_rate", type=click.FloatRange(0, None, min_open=True),
              default=None, help="AdamW peak learning rate (linear warm-up, then decay). "
              "Default 5e-5; 5e-4 with --lora; 1e-4 with --from-scratch.")
@click.option("--head-lr", "head_learning_rate", type=click.FloatRange(0, None, min_open=True), default=None,
              help="Learning rate for the MLM head's own parameters [default: --lr]; a fresh head "
              "(e.g. minilm's) learns faster with a larger one.")
@click.option("--bf16", is_flag=True, help="Train under bfloat16 autocast (faster on CPUs with AVX512-BF16/AMX "
              "and recent GPUs; weights stay float32).")
@click.option("--max-length", type=click.IntRange(8, None), default=None,
              help="Tokens per training chunk, special tokens included [default: 128 or the model's limit].")
@click.option("--mlm-probability", default=0.15, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of tokens masked (of those 80% [MASK], 10% random, 10% kept).")
@click.option("--whole-word-mask", is_flag=True, help="Mask all pieces of a word together.")
@click.option("--eval-fraction", default=0.1, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Share of the text held out to measure loss and perplexity (0: none).")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed (split, masking, order).")
@click.option("--max-steps", type=click.IntRange(1, None), default=None,
              help="Stop after this many optimizer steps (overrides --epochs).")
@click.option("--max-minutes", type=click.FloatRange(0, None, min_open=True), default=None,
              help="Stop cleanly after this many minutes of training; the model is evaluated and saved.")
@click.option("--trainable-layers", type=click.IntRange(1, None), default=None, metavar="N",
              help="Train only the top N encoder layers and the MLM head [default: all].")
@click.option("--lora", type=click.IntRange(1, None), default=None, metavar="R",
              help="Train LoRA adapters of rank R (peft) and save only those (a few MB).")
@click.option("--from-scratch", is_flag=True,
              help="Train a new small model with the start model's tokenizer (see --layers/--heads/--hidden).")
@click.option("--layers", default=4, show_default=True, type=click.IntRange(1, None), help="--from-scratch layers.")
@click.option("--heads", default=4, show_default=True, type=click.IntRange(1, None), help="--from-scratch heads.")
@click.option("--hidden", default=256, show_default=True, type=click.IntRange(8, None),
              help="--from-scratch hidden size (feed-forward 4x).")
@click.option("--eval-steps", type=click.IntRange(1, None), default=None, metavar="N",
              help="Also measure held-out loss every N steps.")
@click.option("--logging-steps", default=10, show_default=True, type=click.IntRange(1, None),
              help="Refresh the progress bar's loss every N steps.")
@click.option("--checkpoint-minutes", default=10.0, show_default=True, type=click.FloatRange(0, None, min_open=True),
              help="Save a checkpoint at least this often (and at each epoch's end).")
@click.option("--save-steps", type=click.IntRange(1, None), default=None, metavar="N",
              help="Save a checkpoint every N steps instead of at each epoch's end.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint (<output>.partial/).")
@overwrite_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as JSON at the end.")
def finetune(corpus, model, lang, output, epochs, batch_size, learning_rate, head_learning_rate, bf16, max_length, mlm_probability,
             whole_word_mask, eval_fraction, seed, max_steps, max_minutes, trainable_layers, lora, from_scratch,
             layers, heads, hidden, eval_steps, logging_steps, checkpoint_minutes, save_steps, resume, overwrite,
             quiet, as_json):
    """Fine-tune a masked language model on CORPUS (UTF-8 text files, `-` for stdin).

    One passage per line, or paragraphs separated by blank lines. 15% of the tokens are
    masked as in BERT; after each epoch a line shows the training loss and the held-out
    loss and perplexity. The model (safetensors), its tokenizer and training_summary.json
    land in --output only when training is complete; checkpoints go to <output>.partial/
    meanwhile, and --resume continues from the last one.

    \b
    Examples:
      mlmtool finetune corpus.txt --epochs 3
      mlmtool finetune corpus.txt -m minilm -o my-mlm --max-minutes 30
      mlmtool predict -m my-mlm "The [MASK] sat on the mat."
      torchrun --nproc_per_node 2 -m mlmtool finetune corpus.txt -o my-mlm
    """
    from ..training.finetune import FinetuneConfig, finetune as run_finetune

    tmp = None
    paths = list(corpus)
    if "-" in paths:
        if paths.count("-") > 1:
            raise click.UsageError("`-` (stdin) can be given only once")
        tmp = tempfile.mkdtemp(prefix="mlmtool-stdin-")
        stdin_path = os.path.join(tmp, "stdin.txt")
        with open(stdin_path, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh)
        paths[paths.index("-")] = stdin_path
    config = FinetuneConfig(
        corpus=paths, output=output, model=model, lang=lang, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, head_learning_rate=head_learning_rate, bf16=bf16, max_length=max_length, mlm_probability=mlm_probability,
        whole_word_mask=whole_word_mask, eval_fraction=eval_fraction, seed=seed, max_steps=max_steps,
        max_minutes=max_minutes, trainable_layers=trainable_layers, lora=lora, from_scratch=from_scratch,
        layers=layers, heads=heads, hidden=hidden, eval_steps=eval_steps, logging_steps=logging_steps,
        checkpoint_minutes=checkpoint_minutes, save_steps=save_steps, resume=resume, overwrite=overwrite,
        progress=not quiet)
    try:
        result = run_finetune(config, report=click.echo)
    except KeyboardInterrupt:
        click.echo(f"\nInterrupted. Checkpoints are kept in {output}.partial/; continue with the same "
                   "command plus --resume.", err=True)
        sys.exit(130)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    before, after = result.before, result.after
    if before and after:
        click.echo(f"Held-out perplexity: {before.perplexity:.2f} -> {after.perplexity:.2f} "
                   f"(loss {before.loss:.4f} -> {after.loss:.4f}, {after.tokens:,} masked tokens)")
    why = " (stopped by --max-minutes)" if result.stopped_early else ""
    click.echo(f"Trained {result.steps:,} steps ({result.epochs:g} epochs, {result.tokens_seen:,} tokens) in "
               f"{_minutes(result.train_seconds)}, {result.tokens_per_second:,.0f} tokens/s{why}")
    if config.lora:
        click.echo(f"Saved LoRA adapters (rank {config.lora}) for {result.start_model} to {result.output}/ ; "
                   f"load with transformers.AutoModelForMaskedLM.from_pretrained(\"{result.output}\")")
    else:
        click.echo(f"Saved to {result.output}/ ; try: mlmtool predict -m {result.output} \"... [MASK] ...\"")
