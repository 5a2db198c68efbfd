"""``mlmtool probe``: what each layer's word vectors encode (label probes, control tasks, the
structural probe) on CoNLL-U treebanks."""

from __future__ import annotations

import json

import click

from ..analysis.probe.config import DEFAULT_TASKS, TASKS, ProbeConfig
from ._common import (batch_size_option, check_output_file, json_option, load_model, model_options,
                      output_option, overwrite_option, prepare_output_dir)
from ..errors import MlmtoolError

#: What ``-o DIR`` writes (besides the saved probes, probes.safetensors + probes.json).
OUTPUT_FILES = ("probe.md", "probe.json", "probe.png", "probe.html", "probes.safetensors", "probes.json")

_FILE = click.Path(dir_okay=False)


def parse_probe_layers(value: str | None) -> list[int] | None:
    """``"2-5"`` → ``[2, 3, 4, 5]``, ``"0,6,12"`` → ``[0, 6, 12]``, ``"4"`` → ``[4]``, None →
    None (hidden-state layers: 0 = the embedding output).

    Raises:
        MlmtoolError: anything else (``param="layers"``); the range is checked against the
            model later (:func:`mlmtool.analysis.probe.run.check_layers`).
    """
    if value is None:
        return None
    out: list[int] = []
    for part in value.replace(" ", "").split(","):
        ends = part.split("-")
        if not (len(ends) in (1, 2) and all(e.isdigit() for e in ends)):
            raise MlmtoolError(f"layers must be a range or a list of layers, 0 = the embedding output, like 0-6, "
                               f"4 or 0,6,12 (got '{value}')", param="layers")
        out += list(range(int(ends[0]), int(ends[-1]) + 1))
    return out


@click.command("probe")
@model_options
@click.option("--train", "train", type=_FILE, default=None, metavar="FILE",
              help="Training treebank (CoNLL-U). Not needed with --load.")
@click.option("--test", "test", type=_FILE, required=True, metavar="FILE", help="Test treebank (CoNLL-U).")
@click.option("-t", "--task", "tasks", multiple=True, type=click.Choice(TASKS),
              help=f"Task to probe (repeatable).  [default: {', '.join(DEFAULT_TASKS)}]")
@click.option("--layers", default=None, metavar="A-B",
              help="Hidden-state layers, 0 = embedding output (e.g. 0-6, 4, or 0,6,12).  [default: all]")
@click.option("--control", is_flag=True, help="Also train control tasks (Hewitt & Liang 2019): selectivity.")
@click.option("--rank", default=ProbeConfig.rank, show_default=True, type=click.IntRange(1, None),
              help="Rank of the structural probe.")
@click.option("--epochs", default=ProbeConfig.epochs, show_default=True, type=click.IntRange(1, None),
              help="Structural probe: most training epochs (Adam; stops early on held-out loss).")
@click.option("--ignore-unseen", "ignore_unseen", is_flag=True,
              help="Skip test words whose label never occurs in training (counted), instead of refusing.")
@click.option("--load", "load", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Evaluate the probes saved in DIR (by -o) on --test instead of training.")
@batch_size_option()
@output_option(what="probe.md, probe.json, probe.png, probe.html and the trained probes")
@click.option("--png", "png", type=_FILE, default=None, metavar="FILE", help="Write the line plot to FILE.")
@click.option("--html", "html", type=_FILE, default=None, metavar="FILE", help="Write the HTML panel to FILE.")
@json_option
@overwrite_option
def probe(model, lang, train, test, tasks, layers, control, rank, epochs, ignore_unseen, load, batch_size, output,
          png, html, as_json, overwrite):
    """Probe every layer's word vectors on a UD treebank.

    \b
    Label probes (upos, xpos, deprel) are logistic regressions; distance and depth are the
    structural probe (Hewitt & Manning 2019): UUAS, DSpr, root accuracy, NSpr.
    Example: mlmtool probe -m minilm --train train.conllu --test test.conllu --control -o out
    """
    from ..analysis.probe import probe as run_probe
    from ..render.probe_view import render_probe, render_probe_html, render_probe_markdown, render_probe_table

    if train is None and load is None:
        raise click.UsageError("give --train FILE (or --load DIR with saved probes)")
    for path in (png, html):
        if path:
            check_output_file(path, overwrite)
    folder = prepare_output_dir(output, overwrite, list(OUTPUT_FILES)) if output else None
    lm = load_model(model, lang)
    config = ProbeConfig(rank=rank, epochs=epochs, batch_size=batch_size)
    say = (lambda line: None) if as_json else (lambda line: click.echo(f"probe: {line}", err=True))
    result = run_probe(lm, train, test, tasks=tasks or DEFAULT_TASKS, layers=parse_probe_layers(layers),
                       control=control, config=config, load=load, ignore_unseen=ignore_unseen, progress=say)
    for task, counts in result.unseen_labels.items():
        click.echo(f"mlmtool: skipped {sum(counts.values())} test words of {task} whose label never occurs in "
                   "training: " + ", ".join(f"{k} ({v})" for k, v in sorted(counts.items())), err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    else:
        from rich.console import Console

        Console().print(render_probe_table(result))
    if png:
        render_probe(result).savefig(png, dpi=120)
    if html:
        render_probe_html(result).save(html)
    if folder is not None:
        (folder / "probe.md").write_text(render_probe_markdown(result), encoding="utf-8")
        result.save(folder / "probe.json")
        render_probe(result).savefig(folder / "probe.png", dpi=120)
        render_probe_html(result).save(folder / "probe.html")
        if result.probes is not None:
            result.probes.save(folder)
