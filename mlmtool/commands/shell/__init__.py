"""``mlmtool shell``: an interactive menu over the library, for people who prefer it to flags.

Choose a language or model once, then predict (with attention diagrams and the HTML page),
fine-tune, embed, explain or analyse heads, as often as you like, all on the model loaded
once. The package has three parts:

* :mod:`.prompts`: asking (``click.prompt`` with ``click.Choice`` / ``click.IntRange`` /
  ``click.Path`` and a few small types; bad answers are re-asked by click with its reason);
* :mod:`.tasks`: one function per menu entry, calling the public library
  (``mlmtool.predict``, ``mlmtool.attention``, ``mlmtool.score_heads``, ...) with the
  session's model;
* here: the menu loop and the ``shell`` command.

Ctrl-C or end of input (Ctrl-D) at any prompt leaves cleanly with "Bye." and exit status
0; Ctrl-C while a task runs stops that task and returns to the menu. A library error
(:class:`mlmtool.MlmtoolError`) is shown as one ``Error:`` line and the menu goes on.
"""

from __future__ import annotations

import traceback

import click

from ...errors import MlmtoolError
from .._common import model_options
from . import prompts
from .tasks import TASKS, Session, describe, load, pick_model

__all__ = ["shell", "run_shell", "Session", "TASKS"]


def run_task(task, session: Session) -> None:
    """Run one task; whatever goes wrong is said in one line (a bug: with its traceback)."""
    try:
        task.run(session)
    except KeyboardInterrupt:  # Ctrl-C while the task computes
        click.echo("\nInterrupted.")
    except MlmtoolError as exc:
        click.echo(f"Error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    except click.Abort:
        raise
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}")
    except ImportError as exc:
        click.echo(f"Not available: {exc}")
    except Exception:  # a bug in a task must not end the session
        traceback.print_exc()
        click.echo("That was a bug in mlmtool (traceback above); the shell goes on.")


def run_shell(session: Session) -> None:
    """The menu loop; returns on "0"/"q", raises :class:`click.Abort` on Ctrl-C/EOF at a prompt."""
    while True:
        click.echo(f"\nModel: {describe(session.lm)}")
        options = [(t.key, t.title + ("" if t.available() else " (not available)")) for t in TASKS]
        choice = prompts.choose("Choice", options + [("0", "Exit")], aliases=prompts.EXIT_ALIASES)
        if choice == "0":
            return
        task = next(t for t in TASKS if t.key == choice)
        if not task.available():
            click.echo(f"'{task.title}' is not available in this installation "
                       f"(it needs {', '.join(task.needs)}).")
            continue
        run_task(task, session)


@click.command()
@model_options
@click.pass_context
def shell(ctx, model, lang):
    """Interactive menu: choose a model, then predict, fine-tune, embed, explain, analyse heads.

    Each task asks for what it needs (with defaults in brackets) and does what the
    matching command does (`mlmtool predict`, `view`, `finetune`, `embed`, `explain`,
    `heads`), on the model loaded once for many questions. Files are never replaced
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
                session.lm = load(model, lang)
            except MlmtoolError as exc:
                click.echo(f"Error: {exc}")
        if session.lm is None:
            session.lm = pick_model()
        run_shell(session)
    except (click.Abort, KeyboardInterrupt):
        click.echo()
    if session.outputs:
        click.echo("Written in this session: " + ", ".join(session.outputs))
    click.echo("Bye.")
