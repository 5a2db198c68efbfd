"""``mlmtool predict``: fill each [MASK] with whole words (several masks jointly)."""

from __future__ import annotations

import json

import click

from ._common import (batch_size_option, check_output_file, json_option, load_model, model_options,
                      output_option, overwrite_option, read_sentences, text_arguments, top_k_option)
from ._diagrams import attention_format_option, words_option, write_diagrams
from ._layerwise import by_layer_options


def fill_options(func):
    """``--max-pieces N``, ``--beam N`` and ``--independent``, defaults from the library
    (:mod:`mlmtool.analysis.fill`, which imports no torch); values are checked there (one line, exit 2)."""
    from ..analysis.fill import DEFAULT_BEAM, DEFAULT_MAX_PIECES

    func = click.option("--independent", is_flag=True,
                        help="With several masks: one list per mask (the others left blank) "
                             "instead of complete sentences.")(func)
    func = click.option("--beam", default=DEFAULT_BEAM, show_default=True, type=int, metavar="N",
                        help="Beam width: unfinished words kept per mask and step, sentences kept per mask.")(func)
    return click.option("--max-pieces", default=DEFAULT_MAX_PIECES, show_default=True, type=int, metavar="N",
                        help="Most vocabulary pieces per word (1 = one piece, as the HF fill-mask pipeline).")(func)


@click.command()
@by_layer_options
@text_arguments
@top_k_option(help="Candidates per mask (complete sentences with several masks).")
@fill_options
@model_options
@json_option
@batch_size_option()
@output_option(what="the attention diagrams (one per head, and overview)")
@click.option("-a", "--attention-dir", type=click.Path(file_okay=False), default=None, hidden=True)
@attention_format_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write one self-contained interactive HTML view (predictions + all heads).")
@words_option
@overwrite_option
def predict(text, input_file, top_k, max_pieces, beam, independent, model, lang, as_json, batch_size, output,
            attention_dir, fmt, html_path, words, overwrite):
    """Predict the words hidden behind [MASK] in TEXT.

    Each [MASK] stands for one whole word of up to --max-pieces vocabulary pieces (it
    becomes the model's own mask token, e.g. <mask> for RoBERTa). With several masks the
    output is the top complete sentences by joint probability (--independent: one list
    per mask). Scores are probabilities: a word's is the product of its pieces' (each
    with the later pieces masked; PLL-word-l2r, Kauf & Ivanova 2023). --words draws the
    attention of -o/--html with one row and column per word (Clark et al. 2019).

    \b
    Examples:
      mlmtool predict "I brush my teeth with [MASK] every morning."
      mlmtool predict "The [MASK] sat on the [MASK]." -k 3
      mlmtool predict -m en-mini "The [MASK] sat on the mat." -o diagrams/ --html view.html
      mlmtool predict "I brush my teeth with [MASK]." --html view.html --words
      printf 'A [MASK] day.\\nI like [MASK].\\n' | mlmtool predict - --json
    """
    if attention_dir:
        click.echo("Note: -a/--attention-dir is now -o/--output DIR.", err=True)
        output = output or attention_dir
    texts = read_sentences(text, input_file)
    if words and not (output or html_path):
        raise click.UsageError("--words is for the attention of -o/--output DIR and --html FILE; add one of them")
    if (output or html_path) and len(texts) > 1:
        raise click.UsageError("-o/--output and --html take one sentence, not several")
    if html_path:
        check_output_file(html_path, overwrite)
    lm = load_model(model, lang)
    options = {"top_k": top_k, "max_pieces": max_pieces, "beam": beam, "independent": independent,
               "batch_size": batch_size}
    results, att, note = _run(lm, texts, options, with_attention=bool(output or html_path))
    if output:
        from ..analysis.words import aggregate_words

        write_diagrams(lm, aggregate_words(att) if words else att, output, fmt, overwrite)
    if html_path:
        from ..render.html_view import render_view

        render_view(att, results[0] if results else None, note=note, words=True if words else None).save(html_path)
        click.echo(f"Wrote {html_path}", err=True)
    if results is None:
        click.echo(note, err=True)
        return
    if as_json:
        from ..analysis.predict import predict_json

        click.echo(json.dumps(predict_json(results[0] if text and text != ("-",) else results),
                              ensure_ascii=False, indent=2))
        return
    print_predictions(results)


def _run(lm, texts: list[str], options: dict, with_attention: bool):
    """``(predictions or None, attention or None, note or None)``; the model runs once.

    With attention asked for, the library's rule (:func:`mlmtool.analysis.view.view_inputs`,
    the mask required): a model without a masked-LM head gives the attention and a note.
    Otherwise a model without a head is an error (NoMLMHeadError, exit 2).
    """
    if not with_attention:
        from ..analysis.predict import predict as run_predict

        return run_predict(lm, texts, **options), None, None
    from ..analysis.view import view_inputs

    att, prediction, note = view_inputs(lm, texts[0], mask_required=True, **options)
    return ([prediction] if prediction is not None else None), att, note


def print_predictions(results) -> None:
    """Print predictions for people (``mlmtool predict`` and the shell): each filled sentence
    with its probability, 4 decimals (a word's pieces shown when it has several).

    Args:
        results: a list of :class:`~mlmtool.analysis.fill.Prediction`; with several, each
            is headed by its text. Joint ``sentences`` are shown when present, else each
            mask's candidates.
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)

    def line(sequence, score, words=()):
        pieces = " ".join(f"[{' '.join(w.pieces)}]" for w in words if len(w.pieces) > 1)
        console.print(f"{escape(sequence)}  [cyan]({score:.4f})[/cyan]" + (f"  [dim]{escape(pieces)}[/dim]"
                                                                          if pieces else ""))

    for n, res in enumerate(results):
        if len(results) > 1:
            if n:
                console.print()
            console.print(f"[bold]{escape(res.text)}[/bold]")
        if res.sentences:
            for sent in res.sentences:
                line(sent.sequence, sent.score, sent.words)
            continue
        for mask in res.masks:
            if len(res.masks) > 1:
                console.print(f"[dim]mask {mask.index} of {len(res.masks)}:[/dim]")
            for cand in mask.candidates:
                line(cand.sequence, cand.score, [cand])
