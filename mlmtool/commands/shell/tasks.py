"""The shell's tasks: each asks its questions, then calls the public library on the session's model.

Every task takes the :class:`Session` and uses ``session.lm``, the model the shell loaded
once; nothing here rebuilds a command line or replaces the loader. The computing is the
library's (:func:`mlmtool.predict`, :func:`mlmtool.attention`,
:func:`mlmtool.save_attention_diagrams`, :func:`mlmtool.render_view`,
:func:`mlmtool.score_heads`, :func:`mlmtool.word_vectors` / :func:`mlmtool.project`,
:func:`mlmtool.explain`, :func:`mlmtool.finetune`); a task only asks, calls and says what it
wrote. Library errors (:class:`mlmtool.MlmtoolError`) are left to the menu, which shows
them as one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click

import mlmtool

from ..explain import OUTPUT_FILES as EXPLAIN_FILES  # the files of `mlmtool explain -o DIR`
from . import prompts


@dataclass
class Session:
    """What the shell remembers between tasks.

    Attributes:
        lm: the loaded model (:class:`mlmtool.LoadedModel`), loaded once and shared by
            every task.
        head_labels: ``{"L{l}H{h}": label}`` (from 1) from the last heads analysis, shown
            in later HTML pages.
        outputs: files and folders written in this session, in order.
    """

    lm: object | None = None
    head_labels: dict[str, str] | None = None
    outputs: list[str] = field(default_factory=list)


def load(model: str | None, lang: str = "en"):
    """Load through the command line's one loader (:func:`mlmtool.commands._common.load_model`)."""
    from .._common import load_model

    click.echo(f"Loading {model or lang}...")
    return load_model(model, lang)


def describe(lm) -> str:
    """``name (L layers x H heads, masked-LM head)``."""
    head = "masked-LM head" if lm.has_mlm_head else "no MLM head: attention, heads and embed only"
    return f"{lm.name} ({lm.num_layers} layers x {lm.num_heads} heads, {head})"


def _prepare_dir(path: str, overwrite: bool) -> Path:
    """Create the folder the user chose (:func:`prompts.output_dir` already asked about its files)."""
    from .._common import prepare_output_dir

    return prepare_output_dir(path, overwrite)


# ---------------------------------------------------------------- tasks

def task_predict(session: Session) -> None:
    """Predict masked words; optionally write attention diagrams and the HTML page.

    The model runs once (:func:`mlmtool.analysis.view.view_inputs`: the predictions, or the
    attention and a note saying why there are none); the predictions are printed by the
    CLI's :func:`mlmtool.commands.predict.print_predictions`.
    """
    from ...analysis.view import prediction_note, view_inputs
    from ...defaults import TOP_K
    from ...tokens import USER_MASK
    from ..predict import print_predictions

    lm = session.lm
    text = prompts.text(f"Sentence (write {USER_MASK} for each word to guess; empty: back)", optional=True)
    if not text:
        return
    note = prediction_note(lm, text)
    if note:
        click.echo(note)
    top_k = TOP_K if note else prompts.count("How many candidates per mask", TOP_K)
    attention, prediction, note = view_inputs(lm, text, top_k=top_k)
    if prediction is not None:
        print_predictions([prediction])
    if click.confirm("Write attention diagrams (one PNG per head)?", default=False):
        folder, overwrite = prompts.output_dir("Folder", "attention")
        out = _prepare_dir(folder, overwrite)
        paths = mlmtool.save_attention_diagrams(attention, out, "png")
        session.outputs.append(str(out))
        click.echo(f"Wrote {len(paths) - 1} head diagrams and overview.png to {out}/")
    if click.confirm("Write the interactive HTML page?", default=True):
        path, _ = prompts.output_file("HTML file", "view.html")
        page = mlmtool.render_view(attention, prediction, head_labels=session.head_labels, note=note)
        page.save(path)
        session.outputs.append(path)
        click.echo(f"Wrote {path} ({Path(path).stat().st_size / 1e6:.2f} MB); open it in a browser.")


def _training_copy(lm):
    """A copy of ``lm`` with its own weights, so fine-tuning never changes the session's model."""
    import copy
    import dataclasses

    return dataclasses.replace(lm, model=copy.deepcopy(lm.model))


def task_finetune(session: Session) -> None:
    """Fine-tune a copy of the model on a text file; offer to switch to the result."""
    lm = session.lm
    corpus = prompts.existing_file("Training text file (one passage per line)")
    out, overwrite = prompts.output_dir("Folder for the fine-tuned model", "finetuned-model")
    epochs = prompts.count("Epochs", 1)
    max_minutes = prompts.minutes("Stop after how many minutes (empty: no limit)")
    config = mlmtool.FinetuneConfig(corpus=[corpus], output=out, model=lm.name, epochs=epochs,
                                    max_minutes=max_minutes, overwrite=overwrite)
    result = mlmtool.finetune(config, lm=_training_copy(lm), report=click.echo)
    session.outputs.append(out)
    before, after = result.before, result.after
    if before and after:
        click.echo(f"Held-out perplexity: {before.perplexity:.2f} -> {after.perplexity:.2f}")
    click.echo(f"Trained {result.steps:,} steps; saved to {result.output}/")
    if click.confirm("Use the fine-tuned model from now on?", default=True):
        session.lm = load(out)
        session.head_labels = None


#: How the embed task's menu describes each of :data:`mlmtool.analysis.embed.METHODS`.
_METHOD_TITLES = {"pca": "PCA (fast, linear)", "tsne": "t-SNE (clusters)"}


def task_embed(session: Session) -> None:
    """Plot the words of some sentences in 2-D (PNG, and optionally an HTML scatter)."""
    from ...analysis.embed import METHODS
    from ..embed import summary_line, write_outputs

    lm = session.lm
    sentences = prompts.sentences()
    method = prompts.choose("Projection", [(m, _METHOD_TITLES[m]) for m in METHODS])
    png, _ = prompts.output_file("PNG file", "embeddings.png", suffix=".png")
    html = None
    if click.confirm("Also write an interactive HTML scatter?", default=False):
        html, _ = prompts.output_file("HTML file", "embeddings.html")
    vectors = mlmtool.word_vectors(lm, sentences)
    proj = mlmtool.project(vectors, method=method)
    for note in proj.notes:
        click.echo(f"Note: {note}")
    written = write_outputs(proj, vectors, {"png": [png], "html": [html]})
    session.outputs += written
    click.echo(summary_line(proj, lm.num_layers))
    click.echo("Wrote " + ", ".join(written))


def task_explain(session: Session) -> None:
    """Explain a prediction with SHAP; print it and optionally write the HTML, PNG and JSON."""
    from rich.console import Console

    from ...render.explain_view import render_explain_text
    from ...tokens import USER_MASK
    from ..explain import write_files as write_explain_files

    lm = session.lm
    if not lm.has_mlm_head:
        click.echo(f"'{lm.name}' has no masked-LM head, and explaining a prediction needs one.")
        return
    text = prompts.masked_sentence(f"Sentence with {USER_MASK}", USER_MASK, lm.mask_token)
    target = prompts.text("Word to explain (empty: the top prediction)", optional=True)
    folder = None
    if click.confirm("Write explanation.html / .png / .json to a folder?", default=False):
        folder = prompts.output_dir("Folder", "explain")
    result = mlmtool.explain(lm, text, target=target or None, progress=None)
    Console(highlight=False, soft_wrap=True).print(render_explain_text(result))
    if folder:
        out = _prepare_dir(*folder)
        write_explain_files(result, out)
        session.outputs.append(str(out))
        click.echo(f"Wrote {', '.join(EXPLAIN_FILES)} to {out}/")


def task_heads(session: Session) -> None:
    """Score every head on standard patterns, write the report, keep the labels for HTML pages."""
    from ...analysis.heads import default_sentences
    from ...render.heads_view import save_heads_report
    from .._common import read_sentences

    lm = session.lm
    source = prompts.existing_file("File of sentences (empty: the set shipped for the language)", optional=True)
    folder, overwrite = prompts.output_dir("Folder for analysis.md, heads.json and heatmaps", "heads")
    pairs = click.prompt("Word pairs to test, e.g. quickly:ran, big:car (empty: none)", default="",
                         show_default=False, type=prompts.WordPairs())
    if source:
        sentences = read_sentences((), input_file=source)
    else:
        lang = lm.entry.lang if lm.entry is not None else "en"
        sentences = default_sentences(lang)
        click.echo(f"Using the shipped {lang} sentence set ({len(sentences)} sentences).")
    scores = mlmtool.score_heads(lm, sentences, pairs=pairs)
    out = _prepare_dir(folder, overwrite)
    paths = save_heads_report(scores, out)
    session.outputs.append(str(out))
    labels = mlmtool.head_labels(scores)  # str [layers, heads], from 0
    session.head_labels = {f"L{l + 1}H{h + 1}": str(labels[l, h])
                           for l in range(labels.shape[0]) for h in range(labels.shape[1])}
    by_label: dict[str, list[str]] = {}
    for name, label in session.head_labels.items():
        by_label.setdefault(label, []).append(name)
    click.echo(f"Heads by what they do, over {len(scores.sentences)} sentences (layer and head from 1):")
    for label, names in sorted(by_label.items()):
        click.echo(f"  {label}: {', '.join(names)}")
    click.echo(f"Wrote {len(paths)} files to {out}/ (analysis.md, heads.json, heatmaps); "
               "the labels will be shown in the HTML pages you write next.")


def task_model(session: Session) -> None:
    """Choose another language / model."""
    session.lm = pick_model()
    session.head_labels = None


def pick_model():
    """Show the registry and return the model the user chose, once it has loaded."""
    from ...registry import REGISTRY

    names = list(REGISTRY)
    click.echo("\nChoose a language / model:")
    for i, name in enumerate(names, 1):
        click.echo(f"  {i}) {name:7s} {REGISTRY[name].description}")
    click.echo("  or type a model directory (a folder with config.json).")
    return prompts.model(names, load)


@dataclass
class Task:
    """One menu entry.

    Attributes:
        key: what the user types.
        title: the menu line.
        run: ``run(session)``.
        needs: modules of optional extras the task imports (``shap``, ``sklearn``, ...);
            when one is missing the menu marks the task "(not available)".
    """

    key: str
    title: str
    run: Callable[[Session], None]
    needs: tuple[str, ...] = ()

    def available(self) -> bool:
        import importlib.util

        return all(importlib.util.find_spec(m) is not None for m in self.needs)


TASKS: list[Task] = [
    Task("1", "Predict masked words (+ attention diagrams, HTML page)", task_predict),
    Task("2", "Fine-tune the model on a text file", task_finetune, ("datasets", "accelerate")),
    Task("3", "Embed words and plot them in 2-D", task_embed, ("sklearn",)),
    Task("4", "Explain a prediction with SHAP", task_explain, ("shap",)),
    Task("5", "Analyse what each attention head does", task_heads),
    Task("6", "Change language / model", task_model),
]
