"""``mlmtool shell``: an interactive menu for people who prefer it to flags.

Choose a language or model once, then predict (with attention diagrams and the HTML page),
fine-tune, embed, explain or analyse heads, as often as you like. Nothing here computes
anything itself:

* predictions, diagrams and the HTML page call the library directly
  (:func:`mlmtool.predict.predict`, :func:`mlmtool.attention.attention`,
  :func:`mlmtool.render.diagrams.save_attention_diagrams`,
  :func:`mlmtool.commands.view.build_view`) on the model loaded once;
* fine-tune, embed, explain and heads run the very sub-commands (``mlmtool finetune ...``)
  with the answers turned into arguments, through the ``mlmtool`` group with
  ``standalone_mode=False``. The read-only ones (embed, explain, heads) get the model
  already loaded (``mlmtool.models.load`` answers with it while they run); fine-tuning
  loads its own copy so the session's model is never changed behind the user's back.
  A sub-command whose module is missing is shown as "not available".

Bad answers re-prompt; Ctrl-C or end of input (Ctrl-D) at any prompt leaves cleanly with
"Bye." and exit status 0; Ctrl-C while a task runs stops that task and returns to the menu.
"""

from __future__ import annotations

import contextlib
import importlib.util
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click

from ..errors import MlmtoolError
from ._common import model_options


@dataclass
class Session:
    """What the shell remembers between tasks.

    Attributes:
        lm: the loaded model (:class:`mlmtool.models.LoadedModel`).
        head_labels: ``{"L{l}H{h}": label}`` (from 1) from the last heads analysis, shown
            in later HTML pages.
        outputs: files and folders written in this session, in order.
    """

    lm: object | None = None
    head_labels: dict[str, str] | None = None
    outputs: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- prompts

def _ask(text: str, default: str | None = None, optional: bool = False) -> str:
    """One line of text; re-asks on an empty answer unless ``optional`` or a default."""
    if optional:
        return click.prompt(text, default="", show_default=False).strip()
    while True:
        answer = click.prompt(text, default=default).strip()
        if answer:
            return answer
        click.echo("Please type something (Ctrl-D to leave).")


def _ask_int(text: str, default: int, low: int = 1) -> int:
    return click.prompt(text, default=default, type=click.IntRange(low, None))


def _choose(text: str, options: list[tuple[str, str]], aliases: dict[str, str] | None = None) -> str:
    """Show ``key) label`` lines and return a key; unknown answers re-prompt."""
    for key, label in options:
        click.echo(f"  {key}) {label}")
    keys = [k for k, _ in options]
    while True:
        answer = click.prompt(text).strip().lower()
        answer = (aliases or {}).get(answer, answer)
        if answer in keys:
            return answer
        click.echo(f"'{answer}' is not a choice; type one of {', '.join(keys)}.")


def _existing_file(text: str, optional: bool = False) -> str:
    while True:
        answer = _ask(text, optional=optional)
        if not answer or Path(answer).is_file():
            return answer
        click.echo(f"No such file: '{answer}'.")


def _output_file(text: str, default: str) -> tuple[str, bool]:
    """A file name to write; an existing file is replaced only after a yes."""
    while True:
        path = _ask(text, default)
        p = Path(path)
        if p.is_dir():
            click.echo(f"'{path}' is a directory; give a file name.")
        elif not p.exists():
            return path, False
        elif click.confirm(f"'{path}' exists. Replace it?", default=False):
            return path, True


def _output_dir(text: str, default: str) -> tuple[str, bool]:
    """A folder to write into; one with files in it is written over only after a yes."""
    while True:
        path = _ask(text, default)
        p = Path(path)
        if p.exists() and not p.is_dir():
            click.echo(f"'{path}' is a file; give a folder name.")
        elif not (p.is_dir() and any(p.iterdir())):
            return path, False
        elif click.confirm(f"'{path}' already has files. Write over them?", default=False):
            return path, True


# ---------------------------------------------------------------- the model

def _describe(lm) -> str:
    head = "masked-LM head" if lm.has_mlm_head else "no MLM head: attention, heads and embed only"
    return f"{lm.name} ({lm.num_layers} layers x {lm.num_heads} heads, {head})"


def _load(model: str | None, lang: str):
    from ..models import load

    click.echo(f"Loading {model or lang}...")
    return load(model, lang)


def _pick_model(session: Session) -> None:
    """Ask for a registry entry (number or name) or a model directory until one loads."""
    from ..registry import REGISTRY

    names = list(REGISTRY)
    click.echo("\nChoose a language / model:")
    for i, name in enumerate(names, 1):
        click.echo(f"  {i}) {name:7s} {REGISTRY[name].description}")
    click.echo("  or type a model directory (a folder with config.json).")
    while True:
        answer = _ask("Model")
        if answer.isdigit():
            if not 1 <= int(answer) <= len(names):
                click.echo(f"Type a number from 1 to {len(names)}, a name or a directory.")
                continue
            answer = names[int(answer) - 1]
        model = answer
        try:
            session.lm = _load(model, "en")
            return
        except MlmtoolError as exc:
            click.echo(f"Error: {exc}")


@contextlib.contextmanager
def _shared_model(lm):
    """While a read-only sub-command runs, ``mlmtool.models.load(lm.name)`` returns ``lm``."""
    from .. import models

    original = models.load

    def load(model=None, lang="en", **kwargs):
        if model == lm.name and not kwargs:
            return lm
        return original(model, lang, **kwargs)

    models.load = load
    try:
        yield
    finally:
        models.load = original


def _available(command: str) -> bool:
    from ..cli import COMMANDS

    target = COMMANDS.get(command)
    return target is not None and importlib.util.find_spec(target.split(":")[0]) is not None


def _run(session: Session, args: list[str], share_model: bool = True) -> bool:
    """Run ``mlmtool <args>`` in this process; errors are printed, never raised.

    Returns:
        True when the sub-command finished without error.
    """
    from ..cli import cli

    click.echo("$ mlmtool " + " ".join(_quote(a) for a in args))
    guard = _shared_model(session.lm) if share_model else contextlib.nullcontext()
    try:
        with guard:
            cli.main(args=args, prog_name="mlmtool", standalone_mode=False)
        return True
    except click.Abort:  # Ctrl-C inside the sub-command
        click.echo("Interrupted.")
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}")
    except ImportError as exc:
        click.echo(f"Not available: {exc}")
    except Exception:  # a bug in a sub-command must not end the session
        traceback.print_exc()
        click.echo("That was a bug in mlmtool (traceback above); the shell goes on.")
    return False


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# ---------------------------------------------------------------- tasks

def task_predict(session: Session) -> None:
    """Predict masked words; optionally write attention diagrams and the HTML page."""
    from ..analysis.attention import attention
    from ..analysis.predict import predict
    from ..render.diagrams import diagram_filename, save_attention_diagrams
    from ..tokens import USER_MASK, to_model_text
    from .view import build_view

    lm = session.lm
    text = _ask(f"Sentence (write {USER_MASK} for each word to guess; empty: back)", optional=True)
    if not text:
        return
    top_k = 5
    has_mask = lm.mask_token_id in lm.tokenizer(to_model_text(text, lm.mask_token))["input_ids"]
    if not has_mask:
        click.echo(f"No {USER_MASK} in the sentence: no predictions, attention only.")
    elif not lm.has_mlm_head:
        click.echo(f"'{lm.name}' has no masked-LM head: predictions need one. "
                   "Attention diagrams and the HTML page still work.")
    else:
        top_k = _ask_int("How many candidates per mask", 5)
        result = predict(lm, text, top_k=top_k)
        for mask in result.masks:
            if len(result.masks) > 1:
                click.echo(f"mask {mask.index} of {len(result.masks)}:")
            for cand in mask.candidates:
                click.echo(f"  {cand.sequence}  ({cand.score:.4f})")
    if click.confirm("Write attention diagrams (one PNG per head)?", default=False):
        from ._common import prepare_output_dir

        folder, overwrite = _output_dir("Folder", "attention")
        names = [diagram_filename(l, h) for l in range(1, lm.num_layers + 1)
                 for h in range(1, lm.num_heads + 1)] + ["overview.png"]
        out = prepare_output_dir(folder, overwrite, names)
        paths = save_attention_diagrams(attention(lm, text), out, "png")
        session.outputs.append(str(out))
        click.echo(f"Wrote {len(paths) - 1} head diagrams and overview.png to {out}/")
    if click.confirm("Write the interactive HTML page?", default=True):
        path, _ = _output_file("HTML file", "view.html")
        page, _ = build_view(lm, text, top_k=top_k, head_labels=session.head_labels)
        page.save(path)
        session.outputs.append(path)
        click.echo(f"Wrote {path} ({Path(path).stat().st_size / 1e6:.2f} MB); open it in a browser.")


def task_finetune(session: Session) -> None:
    """Fine-tune on a text file (``mlmtool finetune``); offer to switch to the result."""
    lm = session.lm
    corpus = _existing_file("Training text file (one passage per line)")
    out, overwrite = _output_dir("Folder for the fine-tuned model", "finetuned-model")
    epochs = _ask_int("Epochs", 1)
    minutes = _ask("Stop after how many minutes (empty: no limit)", optional=True)
    args = ["finetune", corpus, "-m", lm.name, "-o", out, "-e", str(epochs)]
    if minutes:
        args += ["--max-minutes", minutes]
    if overwrite:
        args.append("--overwrite")
    if _run(session, args, share_model=False):
        session.outputs.append(out)
        if click.confirm("Use the fine-tuned model from now on?", default=True):
            try:
                session.lm = _load(out, "en")
            except MlmtoolError as exc:
                click.echo(f"Error: {exc}")


def _sentences() -> list[str]:
    click.echo("Type sentences, one per line, and an empty line to finish (or give a file path).")
    lines: list[str] = []
    while True:
        line = click.prompt(f"{len(lines) + 1}", default="", show_default=False, prompt_suffix="> ").strip()
        if not line:
            if lines:
                return lines
            click.echo("At least one sentence, please.")
            continue
        if not lines and Path(line).is_file():
            return [line]
        lines.append(line)


def task_embed(session: Session) -> None:
    """Plot the words of some sentences in 2-D (``mlmtool embed``)."""
    sentences = _sentences()
    method = _choose("Projection", [("pca", "PCA (fast, linear)"), ("tsne", "t-SNE (clusters)")])
    png, ow1 = _output_file("PNG file", "embeddings.png")
    args = ["embed", *sentences, "-m", session.lm.name, "--method", method, "-o", png]
    html = None
    if click.confirm("Also write an interactive HTML scatter?", default=False):
        html, ow2 = _output_file("HTML file", "embeddings.html")
        args += ["--html", html]
        ow1 = ow1 or ow2
    if ow1:
        args.append("--overwrite")
    if _run(session, args):
        session.outputs += [p for p in (png, html) if p]


def task_explain(session: Session) -> None:
    """Explain a prediction with SHAP (``mlmtool explain``)."""
    from ..tokens import USER_MASK

    lm = session.lm
    if not lm.has_mlm_head:
        click.echo(f"'{lm.name}' has no masked-LM head, and explaining a prediction needs one.")
        return
    while True:
        text = _ask(f"Sentence with {USER_MASK}")
        if USER_MASK in text or lm.mask_token in text:
            break
        click.echo(f"The sentence needs a {USER_MASK}, e.g. \"The {USER_MASK} sat on the mat.\"")
    args = ["explain", text, "-m", lm.name]
    target = _ask("Word to explain (empty: the top prediction)", optional=True)
    if target:
        args += ["-t", target]
    if click.confirm("Write explanation.html / .png / .json to a folder?", default=False):
        out, overwrite = _output_dir("Folder", "explain")
        args += ["-o", out] + (["--overwrite"] if overwrite else [])
    _run(session, args)


def task_heads(session: Session) -> None:
    """Score every head on standard patterns (``mlmtool heads``); keep its labels."""
    from ..render.html_view import load_head_labels

    lm = session.lm
    source = _existing_file("File of sentences (empty: the set shipped for the language)", optional=True)
    out, overwrite = _output_dir("Folder for analysis.md, heads.json and heatmaps", "heads")
    pairs = _ask("Word pairs to test, e.g. quickly:ran, big:car (empty: none)", optional=True)
    args = ["heads"] + ([source] if source else []) + ["-m", lm.name, "-o", out]
    for pair in (p.strip() for p in pairs.split(",")):
        if pair:
            args += ["-p", pair]
    if overwrite:
        args.append("--overwrite")
    if _run(session, args):
        session.outputs.append(out)
        labels_file = Path(out) / "heads.json"
        if labels_file.is_file():
            try:
                session.head_labels = load_head_labels(labels_file, lm.num_layers, lm.num_heads)
                click.echo(f"Head labels from {labels_file} will be shown in the HTML pages you write next.")
            except MlmtoolError as exc:
                click.echo(f"(head labels not used: {exc})")


def task_model(session: Session) -> None:
    """Choose another language / model."""
    _pick_model(session)
    session.head_labels = None


#: Menu: key, title, task, sub-command it needs (None: library only).
TASKS: list[tuple[str, str, Callable[[Session], None], str | None]] = [
    ("1", "Predict masked words (+ attention diagrams, HTML page)", task_predict, None),
    ("2", "Fine-tune the model on a text file", task_finetune, "finetune"),
    ("3", "Embed words and plot them in 2-D", task_embed, "embed"),
    ("4", "Explain a prediction with SHAP", task_explain, "explain"),
    ("5", "Analyse what each attention head does", task_heads, "heads"),
    ("6", "Change language / model", task_model, None),
]


def run_shell(session: Session) -> None:
    """The menu loop; returns on "0"/"q", raises :class:`click.Abort` on Ctrl-C/EOF at a prompt."""
    while True:
        click.echo(f"\nModel: {_describe(session.lm)}")
        options = []
        for key, title, _, command in TASKS:
            options.append((key, title + ("" if command is None or _available(command) else " (not available)")))
        options.append(("0", "Exit"))
        choice = _choose("Choice", options, aliases={"q": "0", "quit": "0", "exit": "0"})
        if choice == "0":
            return
        _, title, task, command = next(t for t in TASKS if t[0] == choice)
        if command is not None and not _available(command):
            click.echo(f"'{title}' is not available in this installation (no mlmtool {command} command).")
            continue
        try:
            task(session)
        except KeyboardInterrupt:
            click.echo("\nInterrupted.")
        except MlmtoolError as exc:
            click.echo(f"Error: {exc}")


@click.command()
@model_options
@click.pass_context
def shell(ctx, model, lang):
    """Interactive menu: choose a model, then predict, fine-tune, embed, explain, analyse heads.

    Each task asks for what it needs (with defaults in brackets) and does what the
    matching command does (`mlmtool predict`, `view`, `finetune`, `embed`, `explain`,
    `heads`), so the model is loaded once for many questions. Files are never replaced
    without a yes. Ctrl-C or Ctrl-D at a prompt leaves; Ctrl-C during a task stops the task.

    \b
    Examples:
      mlmtool shell
      mlmtool shell -m minilm
    """
    from click.core import ParameterSource

    click.echo("mlmtool shell: look inside a masked language model. Ctrl-D or 0 to leave.")
    session = Session()
    try:
        if model or ctx.get_parameter_source("lang") not in (ParameterSource.DEFAULT, None):
            try:
                session.lm = _load(model, lang)
            except MlmtoolError as exc:
                click.echo(f"Error: {exc}")
        if session.lm is None:
            _pick_model(session)
        run_shell(session)
    except click.Abort:
        click.echo()
    if session.outputs:
        click.echo("Written in this session: " + ", ".join(session.outputs))
    click.echo("Bye.")
