"""``mlmtool finetune``: adapt a masked language model to a text file (or train one from scratch)."""

from __future__ import annotations

import dataclasses
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import typing

import click

from ..training.config import FinetuneConfig
from ._common import model_options


def _minutes(seconds: float) -> str:
    """``2 min 03 s`` / ``41.2 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def config_options(func):
    """Add one option per :class:`FinetuneConfig` field that has ``flags`` in its metadata.

    Spelling, help, default, range and metavar all come from the field (one table:
    :mod:`mlmtool.training.config`); the command receives the values as keyword arguments
    named like the fields. A ``negate`` flag (``-q/--quiet``) passes the field's opposite.
    """
    hints = typing.get_type_hints(FinetuneConfig)
    for f in reversed(dataclasses.fields(FinetuneConfig)):
        meta = f.metadata
        if not meta.get("flags"):
            continue
        kind = _base_type(hints[f.name])
        kw = dict(help=meta["help"], metavar=meta.get("metavar"))
        if kind is bool:
            kw.update(is_flag=True, default=not f.default if meta.get("negate") else f.default)
        else:
            kw.update(default=f.default, show_default=f.default is not None, type=_click_type(kind, meta))
        name = "quiet" if meta.get("negate") else f.name
        func = click.option(*meta["flags"], name, **kw)(func)
    return func


def _base_type(hint):
    """``int`` for ``int | None``, etc."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _click_type(kind, meta):
    """The click type of a field: a range from ``min``/``max`` metadata, a path, or the type."""
    if "min" in meta or "max" in meta:
        rng = click.IntRange if kind is int else click.FloatRange
        return rng(meta.get("min"), meta.get("max"), min_open=meta.get("min_open", False),
                   max_open=meta.get("max_open", False))
    if meta.get("path") == "dir":
        return click.Path(file_okay=False)
    return kind


def config_from_options(corpus: list[str], options: dict) -> FinetuneConfig:
    """The :class:`FinetuneConfig` of the parsed options (``quiet`` becomes ``progress``)."""
    values = dict(options)
    for f in dataclasses.fields(FinetuneConfig):
        if f.metadata.get("negate"):
            values[f.name] = not values.pop("quiet")
    return FinetuneConfig(corpus=corpus, **values)


@click.command()
@click.argument("corpus", nargs=-1, required=True, metavar="CORPUS...")
@model_options
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as JSON at the end.")
def finetune(corpus, as_json, **options):
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
    from ..training.train import finetune as run_finetune

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
    config = config_from_options(paths, options)
    try:
        with _output_lock(config.output), _sigterm_as_interrupt():
            # with --json, stdout is the JSON alone: progress lines go to stderr
            result = run_finetune(config, report=functools.partial(click.echo, err=True) if as_json else click.echo)
    except KeyboardInterrupt:
        click.echo(f"\nInterrupted. Checkpoints are kept in {config.output}.partial/; continue with the same "
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
    if os.path.exists(os.path.join(result.output, "report.html")):
        click.echo(f"What changed (held-out loss, predictions, heads): {result.output}/report.html and report.md")


@contextlib.contextmanager
def _output_lock(output: str):
    """Hold ``<output>.lock`` (``filelock``) while training into ``output``; another finetune on
    the same folder is refused in one line (exit 2). Only process 0 of a torchrun job locks.

    Raises:
        MlmtoolError: the lock is held by a running finetune (exit 2).
    """
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    from filelock import FileLock, Timeout

    from ..errors import MlmtoolError

    lock = FileLock(os.path.abspath(output).rstrip(os.sep) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise MlmtoolError(f"another finetune is writing to '{output}' (lock {lock.lock_file}); "
                                   "wait for it or choose another --output") from None
    try:
        yield
    finally:
        lock.release()
        with contextlib.suppress(OSError):  # leave nothing beside the user's output
            os.remove(lock.lock_file)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into ``KeyboardInterrupt`` while training, so it exits as Ctrl-C does."""
    import signal

    def _raise(signum, frame):
        raise KeyboardInterrupt

    try:
        before = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
