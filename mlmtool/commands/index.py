"""``mlmtool index``: build or extend a corpus index for ``mlmtool search``."""

from __future__ import annotations

import os

import click

from ._common import batch_size_option, load_model, model_options


def parse_layers(value: str | None) -> list[int] | None:
    """``"1,4,6"`` → ``[1, 4, 6]``; None stays None.

    Raises:
        click.BadParameter: not a comma-separated list of integers.
    """
    if value is None:
        return None
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"give layer numbers separated by commas, e.g. 1,4,6 (got '{value}')",
                                 param_hint="'--layers'") from None


@click.command()
@click.argument("corpus", required=False, type=click.Path(dir_okay=False))
@model_options
@click.option("-o", "--output", "output", required=True, type=click.Path(), metavar="DIR",
              help="The index folder (new, empty, or an index of the same model to extend).")
@click.option("--layers", default=None, metavar="1,4,6",
              help="Hidden-state layers to index (0 = embeddings).  [default: the last]")
@click.option("--conllu", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Index a CoNLL-U treebank instead of CORPUS (keeps UPOS and relation per word).")
@click.option("--chunk-lines", type=click.IntRange(1, None), default=None, metavar="N",
              help="Lines per chunk: what Ctrl-C can lose, what memory holds, what each torchrun "
                   "process is dealt.  [default: 2048 for one layer at hidden 384, fewer for more or wider layers]")
@batch_size_option(32)
def index(corpus, model, lang, output, layers, conllu, chunk_lines, batch_size):
    """Index the words of CORPUS (one sentence per line) for `mlmtool search`.

    One vector per word and layer (the mean of its pieces, L2-normalised, float16) in an
    inverted-file index (faiss IVF). Ctrl-C keeps what is done: the same command resumes. Run it again
    after adding lines to CORPUS to append them. Under torchrun (or accelerate launch) the
    processes share the chunks and rank 0 merges them into one index (OUTPUT must be a folder
    every process sees).

    \b
    Examples:
      mlmtool index datasets/bank.txt -m minilm -o bank-index --layers 3,6
      mlmtool index --conllu datasets/en_ewt-dev-300.conllu -m minilm -o ewt-index
      torchrun --nproc-per-node 4 -m mlmtool index big.txt -m minilm -o big-index
    """
    from ..analysis.corpus.build import build_index
    from ..analysis.corpus.shard import rank_device

    if corpus is None and conllu is None:
        raise click.UsageError("give CORPUS (a text file, one sentence per line) or --conllu FILE")
    if corpus is not None and conllu is not None:
        raise click.UsageError("give CORPUS or --conllu FILE, not both")
    wanted = parse_layers(layers)
    rank_device()  # a launched process on a GPU machine: its own GPU
    lm = load_model(model, lang)
    before = _words_before(output)
    info = build_index(lm, corpus, output, wanted, conllu=conllu, batch_size=batch_size, progress=True,
                       chunk_lines=chunk_lines)
    if os.environ.get("RANK", "0") != "0":
        return  # one summary per launch
    added = info.words - before
    click.echo(f"{info.path}: {info.words} words from {info.sentences} sentences ({added} added), "
               f"layers {','.join(map(str, info.layers))}, model {info.model}"
               + (f"; {info.truncated} long sentences cut to the model's length" if info.truncated else ""),
               err=True)


def _words_before(output: str) -> int:
    """Words already in ``output`` (0 when it is not an index yet)."""
    from pathlib import Path

    from ..analysis.corpus.store import MANIFEST, read_info

    return read_info(output).words if (Path(output) / MANIFEST).is_file() else 0
