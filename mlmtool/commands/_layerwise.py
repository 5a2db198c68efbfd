"""``mlmtool predict --by-layer [--json] [--png FILE]``: the predictions at each mask, layer by layer.

:func:`by_layer_options` adds the two options to the predict command and, when
``--by-layer`` is given, runs :func:`run_by_layer` instead of the usual fill-mask output:
the library (:func:`mlmtool.analysis.layerwise.layerwise_predictions`), then a rich table
per mask (layers as rows), JSON, or the picture (:func:`mlmtool.render.layerwise.render_layerwise`).
"""

from __future__ import annotations

import functools
import json

import click

from ..errors import MlmtoolError
from ._common import check_output_file, load_model, read_sentences

#: predict options that write attention files; they do not combine with --by-layer.
_FILE_OPTIONS = {"output": "-o/--output", "attention_dir": "-a/--attention-dir", "html_path": "--html"}


def by_layer_options(func):
    """Add ``--by-layer`` and ``--png FILE`` to a predict-like command.

    The command must take ``text``, ``input_file``, ``top_k``, ``model``, ``lang``,
    ``as_json``, ``batch_size`` and ``overwrite``; with ``--by-layer`` the wrapped function
    is not called.
    """

    @click.option("--png", "png_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                  help="With --by-layer: write the picture (the final word's probability and rank "
                       "across layers, and the top pieces of every layer) to FILE.")
    @click.option("--by-layer", is_flag=True,
                  help="Show what the model's own MLM head reads at each mask after every layer "
                       "(0 = embeddings): top pieces, and the rank and probability of the final one.")
    @functools.wraps(func)
    def wrapper(*args, by_layer=False, png_path=None, **kwargs):
        if not by_layer:
            if png_path:
                raise click.UsageError("--png FILE draws the layer-wise predictions; add --by-layer")
            return func(*args, **kwargs)
        return run_by_layer(kwargs, png_path)

    params = wrapper.__dict__.get("__click_params__", [])
    wrapper.__click_params__ = params[-2:][::-1] + params[:-2]  # listed last: --by-layer, --png
    return wrapper


def run_by_layer(options: dict, png_path: str | None) -> None:
    """The ``--by-layer`` run: read TEXT by the one grammar, compute, then print or draw.

    Raises:
        click.UsageError: file options of predict given as well; ``--png`` with several sentences.
        MlmtoolError: the model has no masked-LM head (one line), or the library's errors.
    """
    clash = [flag for name, flag in _FILE_OPTIONS.items() if options.get(name)]
    if clash:
        raise click.UsageError(f"--by-layer shows predictions layer by layer; it does not take {clash[0]}")
    texts = read_sentences(options["text"], options["input_file"])
    if png_path and len(texts) > 1:
        raise click.UsageError("--png takes one sentence, not several")
    if png_path:
        check_output_file(png_path, options.get("overwrite", False))
    lm = load_model(options["model"], options["lang"])
    if not lm.has_mlm_head:  # the model's own refusal (it names what to use instead), said for --by-layer
        try:
            lm.require_mlm_head()
        except MlmtoolError as exc:
            raise MlmtoolError(f"--by-layer applies the masked-LM head to every layer: {exc}") from None
    from ..analysis.layerwise import layerwise_predictions

    results = layerwise_predictions(lm, texts, top_k=options["top_k"], batch_size=options["batch_size"])
    if png_path:
        from ..render.layerwise import render_layerwise

        render_layerwise(results[0]).savefig(png_path, dpi=150)
        click.echo(f"Wrote {png_path}", err=True)
    if options.get("as_json"):
        payload = [r.to_dict() for r in results]
        single = len(payload) == 1 and tuple(options["text"] or ()) != ("-",)
        click.echo(json.dumps(payload[0] if single else payload, ensure_ascii=False, indent=1))
        return
    print_by_layer(results)


def print_by_layer(results) -> None:
    """People's view: one rich table per mask, layers as rows (layer 0 = the embeddings)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    for n, res in enumerate(results):
        if n:
            console.print()
        for mask in res.masks:
            final = mask.final_token.strip() or repr(mask.final_token)
            where = f", mask {mask.index} of {len(res.masks)}" if len(res.masks) > 1 else ""
            table = Table(title=f"{escape(res.text)}{where}: final '{escape(final)}'", title_justify="left")
            table.add_column("Layer", justify="right")
            table.add_column("Top pieces (probability)")
            table.add_column(f"Rank of '{escape(final)}'", justify="right")
            table.add_column(f"p('{escape(final)}')", justify="right")
            for row in mask.by_layer:
                pieces = ", ".join(f"{escape(t.token.strip() or repr(t.token))} {t.probability:.3f}" for t in row.top)
                label = f"{row.layer} (emb)" if row.layer == 0 else str(row.layer)
                table.add_row(label, pieces, str(row.final_rank), f"{row.final_probability:.4f}")
            console.print(table)
