"""The ``mlmtool`` command group: a thin shell over the library.

Commands live in :mod:`mlmtool.commands` (one module each) and are imported only when
used, so ``mlmtool --help`` does not import torch. Library errors
(:class:`mlmtool.errors.MlmtoolError`) become one ``Error:`` line and exit status 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

#: command name -> "module:attribute"; a command whose module is absent is not listed.
COMMANDS = {
    "predict": "mlmtool.commands.predict:predict",
    "attention": "mlmtool.commands.predict:attention_cmd",
    "models": "mlmtool.commands.models:models",
    "finetune": "mlmtool.commands.finetune:finetune",
    "heads": "mlmtool.commands.heads:heads",
    "embed": "mlmtool.commands.embed:embed",
    "explain": "mlmtool.commands.explain:explain",
    "view": "mlmtool.commands.view:view",
    "shell": "mlmtool.commands.shell:shell",
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
            raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlmtool", prog_name="mlmtool")
def cli():
    """Look inside masked language models: predictions, attention, heads, fine-tuning.

    \b
    Examples:
      mlmtool predict "The [MASK] sat on the mat." -k 5 --attention-dir out/
      mlmtool models
    """


def main(argv=None):
    """Console-script entry point (``mlmtool``)."""
    return cli.main(args=argv, prog_name="mlmtool")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
