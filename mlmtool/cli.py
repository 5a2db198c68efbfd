"""The ``mlmtool`` command group: a thin shell over the library.

Commands live in :mod:`mlmtool.commands` (one module each) and are imported only when
used, so ``mlmtool --help`` does not import torch. Library errors
(:class:`mlmtool.errors.MlmtoolError`) become one ``Error:`` line and exit status 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys

import click

from .commands._common import GRAMMAR

#: command name -> "module:attribute"; a command whose module is absent is not listed.
COMMANDS = {
    "predict": "mlmtool.commands.predict:predict",
    "score": "mlmtool.commands.score:score",
    "attention": "mlmtool.commands.attention:attention_cmd",
    "models": "mlmtool.commands.models:models",
    "finetune": "mlmtool.commands.finetune:finetune",
    "heads": "mlmtool.commands.heads:heads",
    "embed": "mlmtool.commands.embed:embed",
    "explain": "mlmtool.commands.explain:explain",
    "view": "mlmtool.commands.view:view",
    "shell": "mlmtool.commands.shell:shell",
    "serve": "mlmtool.commands.serve:serve",
    "compare": "mlmtool.commands.compare:compare",
    "index": "mlmtool.commands.index:index",
    "search": "mlmtool.commands.search:search",
    "probe": "mlmtool.commands.probe:probe",
}


class UserError(click.ClickException):
    """A one-line user mistake: printed as ``Error: ...``, exit status 2."""

    exit_code = 2


class LazyGroup(click.Group):
    """A click group that imports each command's module only when it is run or shown."""

    def list_commands(self, ctx):
        return [n for n, target in COMMANDS.items()
                if importlib.util.find_spec(target.split(":")[0]) is not None]

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        if importlib.util.find_spec(module) is None:
            return None
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        from .errors import MlmtoolError

        try:
            return super().invoke(ctx)
        except MlmtoolError as exc:
            raise UserError(user_message(exc, ctx)) from None


def user_message(exc, ctx) -> str:
    """One line for a library error, with parameter names shown as the command's flags.

    Library messages name Python parameters (:class:`mlmtool.errors.MlmtoolError`). The
    names in ``exc.param`` (a name or a tuple of names), and any parameter name with an
    underscore, are replaced by the subcommand's long flag wherever they stand as whole
    words: ``"top_k must be at least 1"`` under ``mlmtool predict`` reads
    ``"--top-k must be at least 1"``.
    """
    import re

    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    param = getattr(exc, "param", None)
    named = {param} if isinstance(param, str) else set(param or ())
    sub = ctx.command.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
    for option in getattr(sub, "params", ()):
        longs = [o for o in option.opts if o.startswith("--")]
        if longs and option.name and (option.name in named or "_" in option.name):
            line = re.sub(rf"(?<![\w-]){re.escape(option.name)}(?![\w-])", longs[0], line)
    return line


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlmtool", prog_name="mlmtool")
def cli():
    """Look inside masked language models: predictions, attention, heads, fine-tuning.

    \b
    Examples:
      mlmtool predict "The [MASK] sat on the mat." -k 5 -o out/
      mlmtool attention -i sentences.txt -o diagrams/
      mlmtool models
    """


cli.help = f"{inspect.cleandoc(cli.help)}\n\n\b\nThe grammar, the same in every command (docs/cli.md):\n{GRAMMAR}"


def main(argv=None):
    """Console-script entry point (``mlmtool``)."""
    return cli.main(args=argv, prog_name="mlmtool")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
