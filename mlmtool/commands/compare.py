"""``mlmtool compare``: two models on the same text(s), or one model on two texts."""

from __future__ import annotations

import json

import click

from ..defaults import TOP_HEADS
from ..registry import LANGS
from ._diagrams import words_option
from ._common import (batch_size_option, check_output_file, json_option, load_model, output_option,
                      overwrite_option, prepare_output_dir, read_sentences, top_k_option)


def _texts(text: tuple[str, ...], input_file: str | None) -> list[str]:
    """compare's TEXT: one or two sentences, each argument one sentence; ``-``/``-i`` read lines."""
    if text and input_file:
        raise click.UsageError("give the texts as TEXT or the sentences with -i/--input, not both")
    if input_file or text == ("-",):
        return read_sentences((), input_file or "-")
    if "-" in text:
        raise click.UsageError("`-` (stdin) must be the only TEXT")
    if len(text) > 2:
        raise click.UsageError(
            f"compare takes one or two texts, each one quoted argument (got {len(text)} arguments); "
            "quote each sentence, or use -i FILE for more sentences")
    if not text:
        return read_sentences((), None, prompt=False)
    return [read_sentences((t,))[0] for t in text]  # each argument one sentence (file-name hint)


@click.command()
@click.argument("text", nargs=-1)
@click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              metavar="FILE", help="Read one sentence per line from FILE (`-` = stdin); two-model form, "
              "distances averaged over the sentences.")
@click.option("-m", "--model", "models", envvar="MLMTOOL_MODEL", multiple=True, metavar="NAME|DIR|HUB_ID",
              help="Registry name (see `mlmtool models`), local model directory, or hub id; give it twice "
              "(-m A -m B) to compare two models.")
@click.option("-l", "--lang", envvar="MLMTOOL_LANG", default="en", show_default=True, type=click.Choice(LANGS),
              help="Language; picks the registry's model when --model is not given.")
@top_k_option()
@click.option("--top-heads", default=TOP_HEADS, show_default=True, type=click.IntRange(1, None), metavar="N",
              help="Changed heads listed in the summary.")
@batch_size_option()
@output_option(what="the heatmap (compare_heads.png)")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the layers x heads distance heatmap to exactly this PNG file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write one self-contained interactive page (both sides' heads, their difference, predictions).")
@words_option
@json_option
@overwrite_option
def compare(text, input_file, models, lang, top_k, top_heads, batch_size, output, png_path, html_path, words,
            as_json, overwrite):
    """Compare two models on a text, or one model on two texts: which heads and predictions changed.

    TEXT here is one or two sentences, each one quoted argument (unlike other commands, where
    the words form one sentence). Two models (-m A -m B) read one TEXT, or the sentences of
    -i FILE / `-` (per-head distances averaged over them); they must share a vocabulary and
    have the same layers x heads. One model reads two TEXTs; their words are aligned by
    position when the word counts match, otherwise by difflib.

    Per head, the distance is the Jensen-Shannon distance (base 2, 0 = same, 1 = disjoint;
    Lin 1991, Endres & Schindelin 2003) between the two attention distributions of each row,
    averaged over rows. With [MASK], both sides' candidates are shown with the change in
    probability. Layers and heads are numbered from 1. --words compares two models on word-level
    attention (Clark et al. 2019: mean over a word's pieces as rows, sum as columns); two texts
    are always compared word by word.

    \b
    Examples:
      mlmtool compare -m minilm -m en-mini "The [MASK] sat on the mat."
      mlmtool compare -m en-mini -m my-mlm -i sentences.txt -o out/
      mlmtool compare -m en-mini "The doctor said he [MASK]." "The doctor said she [MASK]." --html pair.html
    """
    from ..analysis.compare import compare_models, compare_texts
    from ..render.compare_view import HEATMAP_NAME, render_compare_heatmap, render_compare_html

    models = list(models) or [None]
    if len(models) > 2:
        raise click.UsageError(f"compare takes one or two models (-m A -m B), not {len(models)}")
    texts = _texts(text, input_file)
    if len(models) == 1 and len(texts) == 1:
        raise click.UsageError("one model and one text: give a second model (-m A -m B) to compare models, "
                               "or a second quoted text to compare texts")
    if len(models) == 1 and len(texts) > 2:
        raise click.UsageError(f"one model compares two texts, not {len(texts)}; give two models (-m A -m B) "
                               f"to compare them on {len(texts)} sentences")
    png_file = check_output_file(png_path, overwrite) if png_path else None
    html_file = check_output_file(html_path, overwrite) if html_path else None
    out_dir = prepare_output_dir(output, overwrite, [HEATMAP_NAME]) if output else None

    if len(models) == 2:
        lm_a, lm_b = load_model(models[0], lang), load_model(models[1], lang)
        result = compare_models(lm_a, lm_b, texts, top_k=top_k, batch_size=batch_size, words=words)
    else:
        result = compare_texts(load_model(models[0], lang), texts[0], texts[1], top_k=top_k)

    written = []
    for path in [p for p in (png_file, out_dir / HEATMAP_NAME if out_dir else None) if p is not None]:
        render_compare_heatmap(result).savefig(path)
        written.append(str(path))
    if html_file:
        render_compare_html(result).save(html_file)
        written.append(str(html_file))
    for note in result.notes:
        click.echo(note, err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    else:
        _print_summary(result, top_heads)
    if written:
        click.echo(f"Wrote {', '.join(written)}", err=True)


def _print_summary(result, top_heads: int) -> None:
    """People's view: what was compared, the most changed heads, the predictions."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..render.heads_view import head_name

    console = Console(highlight=False, soft_wrap=True)
    a, b = result.labels
    if result.kind == "texts":
        console.print(f"[bold]Model {escape(result.models[0])}[/bold], text 1 vs text 2")
        console.print(f"  text 1: {escape(result.texts_a[0])}\n  text 2: {escape(result.texts_b[0])}")
        words = [w.word_a if w.same else f"[bold red]{escape(w.word_a)} → {escape(w.word_b)}[/bold red]"
                 for w in result.alignment]
        console.print(f"Aligned words ({len(result.alignment)}): " + " ".join(
            w if w.startswith("[bold") else escape(w) for w in words))
    else:
        n = len(result.texts_a)
        console.print(f"[bold]{escape(a)}[/bold] vs [bold]{escape(b)}[/bold] on "
                      f"{n} sentence{'s' if n != 1 else ''}")
    top = result.top(top_heads)
    high = top[0][2] if top and top[0][2] > 0 else 1.0
    table = Table(title="Most changed heads (Jensen-Shannon distance of attention rows, 0 = same, 1 = disjoint)")
    table.add_column("head")
    table.add_column("distance", justify="right")
    table.add_column("")
    for layer, head, d in top:
        table.add_row(head_name(layer, head), f"{d:.4f}", "█" * max(0, round(20 * d / high)))
    console.print(table)
    for change in result.changes:
        where = f"sentence {change.sentence}, " if len(result.texts_a) > 1 else ""
        t = Table(title=f"{where}mask {change.mask}: probability under each side")
        t.add_column("candidate")
        t.add_column(escape(a), justify="right")
        t.add_column(escape(b), justify="right")
        t.add_column("change", justify="right")
        for c in change.candidates:
            if c.change is None:
                delta = "–"
            else:
                colour = "green" if c.change >= 0 else "red"
                delta = f"[{colour}]{100 * c.change:+.1f}[/{colour}]"
            t.add_row(escape(c.word), _pct(c.score_a), _pct(c.score_b), delta)
        console.print(t)
    if len(result.texts_a) == 1:
        _print_layers(console, result)
    if not result.changes:
        for label, preds in ((a, result.predictions_a), (b, result.predictions_b)):
            for p in preds[:3]:
                for m in (p.masks if p is not None else []):
                    cands = ", ".join(f"{escape(c.word)} {c.score:.2%}" for c in m.candidates)
                    console.print(f"{escape(label)}, mask {m.index}: {cands}")


def _print_layers(console, result) -> None:
    """Layer-wise top piece at each mask of the (one) sentence, both sides in one table."""
    from rich.markup import escape
    from rich.table import Table

    la, lb = result.layerwise_a[0], result.layerwise_b[0]
    sides = [(label, lw) for label, lw in zip(result.labels, (la, lb)) if lw is not None]
    if not sides:
        return
    for m in range(min(len(lw.masks) for _, lw in sides)):
        t = Table(title=f"mask {m + 1} layer by layer (the MLM head on each layer; layer 0 = embeddings): "
                        "top piece, and the rank of the last layer's word")
        t.add_column("layer", justify="right")
        for label, lw in sides:
            t.add_column(f"{escape(label)}: top", justify="left")
            t.add_column(f"rank of '{escape(lw.masks[m].final_token)}'", justify="right")
        for layer in range(sides[0][1].num_layers + 1):
            cells = [str(layer)]
            for _, lw in sides:
                row = lw.masks[m].by_layer[layer]
                cells += [f"{escape(row.top[0].token)} {row.top[0].probability:.1%}", str(row.final_rank)]
            t.add_row(*cells)
        console.print(t)


def _pct(p: float | None) -> str:
    """A probability as ``12.34%`` (``–`` when the side has none)."""
    return "–" if p is None else f"{p:.2%}"
