"""Options and helpers shared by the sub-commands.

* :func:`model_options` adds ``-m/--model`` (env ``MLMTOOL_MODEL``) and ``-l/--lang`` (env
  ``MLMTOOL_LANG``; choices from the registry).
* :func:`read_texts` turns ``TEXT...``/``FILE``/``-`` arguments into sentences.
* :func:`prepare_output_dir` / :func:`check_output_file` never let a command overwrite
  what the user had unless ``--overwrite`` is given.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from ..errors import MlmtoolError
from ..registry import LANGS


def model_options(func):
    """Add ``-m/--model`` and ``-l/--lang`` to a command (passed as ``model``, ``lang``)."""

    @click.option("-m", "--model", envvar="MLMTOOL_MODEL", default=None, metavar="NAME|DIR|HUB_ID",
                  help="Registry name (see `mlmtool models`), local model directory, or hub id.")
    @click.option("-l", "--lang", envvar="MLMTOOL_LANG", default="en", show_default=True,
                  type=click.Choice(LANGS), help="Language; picks the registry's model when --model is not given.")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def overwrite_option(func):
    """Add ``--overwrite`` (allow replacing existing output)."""
    return click.option("--overwrite", is_flag=True, help="Replace existing output files.")(func)


def load_model(model: str | None, lang: str):
    """Load through the one loader (:func:`mlmtool.models.load`); errors exit 2."""
    from ..models import load

    return load(model, lang)


def read_texts(args: tuple[str, ...] | list[str], prompt: bool = True) -> list[str]:
    """Sentences from command arguments.

    ``-`` reads non-empty lines from stdin; an existing file path reads its non-empty lines
    (UTF-8); anything else is a sentence. No argument prompts ``Text: `` when ``prompt``.

    Raises:
        MlmtoolError: unreadable or empty input.
    """
    if not args:
        if not prompt:
            raise MlmtoolError("no input text given")
        return [click.prompt("Text", prompt_suffix=": ")]
    texts: list[str] = []
    for arg in args:
        if arg == "-":
            texts.extend(line.strip() for line in sys.stdin if line.strip())
        elif _is_file(arg):
            try:
                lines = Path(arg).read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError:
                raise MlmtoolError(f"'{arg}' is not UTF-8 text") from None
            texts.extend(line.strip() for line in lines if line.strip())
        else:
            texts.append(arg)
    if not texts:
        raise MlmtoolError("the input is empty: no sentences to process")
    return texts


def _is_file(arg: str) -> bool:
    """True when ``arg`` names an existing file (False for sentences too long to be a path)."""
    if "\n" in arg:
        return False
    try:
        return Path(arg).is_file()
    except (OSError, ValueError):
        return False


def prepare_output_dir(path: str | Path, overwrite: bool = False, names: list[str] | None = None) -> Path:
    """Create ``path`` for output, refusing to clobber what is there.

    Args:
        path: directory to write into.
        overwrite: allow writing into a non-empty directory.
        names: if given, only these file names count as conflicts (other files are left
            alone and do not block).

    Raises:
        MlmtoolError: ``path`` is a file, or would overwrite files without ``overwrite``.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise MlmtoolError(f"output path '{out}' is a file, not a directory")
    if out.is_dir() and not overwrite:
        clash = [p.name for p in out.iterdir()] if names is None else [n for n in names if (out / n).exists()]
        if clash:
            raise MlmtoolError(f"'{out}' already has files ({clash[0]}, ...); use --overwrite "
                               "or choose another directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_output_file(path: str | Path, overwrite: bool = False) -> Path:
    """Refuse to replace an existing file (or write over a directory) without ``overwrite``.

    Raises:
        MlmtoolError: ``path`` is a directory, or exists and ``overwrite`` is False.
    """
    out = Path(path)
    if out.is_dir():
        raise MlmtoolError(f"output path '{out}' is a directory, expected a file name")
    if out.exists() and not overwrite:
        raise MlmtoolError(f"'{out}' already exists; use --overwrite or choose another name")
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    return out
