"""Options and helpers shared by the sub-commands.

* :func:`model_options` adds ``-m/--model`` (env ``MLMTOOL_MODEL``) and ``-l/--lang`` (env
  ``MLMTOOL_LANG``; choices from the registry).
* :func:`text_arguments` + :func:`read_sentences` read TEXT by the one grammar
  (:data:`GRAMMAR`): words = one sentence, ``-`` = stdin lines, ``-i FILE`` = file lines.
* :func:`top_k_option`, :func:`json_option`, :func:`batch_size_option`,
  :func:`output_option`: the same flag for the same meaning in every command.
* :func:`prepare_output_dir` / :func:`check_output_file` never let a command overwrite
  what the user had unless ``--overwrite`` is given.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from ..defaults import TOP_K
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
    """Load through the one loader (:func:`mlmtool.models.load`); errors exit 2.

    An offline-fallback warning from the loader is printed as one ``mlmtool: ...`` line.
    """
    import warnings

    from ..models import OfflineFallbackWarning, load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OfflineFallbackWarning)
        lm = load(model, lang)
    for w in caught:
        if issubclass(w.category, OfflineFallbackWarning):
            click.echo(f"mlmtool: {w.message}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return lm


#: The command-line grammar, written once (shown by ``mlmtool --help``, docs/cli.md).
GRAMMAR = """\
TEXT: the words after the options form ONE sentence ("The [MASK] sat."); `-` reads one
  sentence per line from stdin; `-i/--input FILE` reads one sentence per line from FILE.
-o/--output DIR: the directory a command writes its files into (created when missing;
  existing files are never replaced without --overwrite). --html FILE / --png FILE write
  exactly that one file. --json prints the results as JSON on stdout.
The same flag means the same everywhere: -m/--model, -l/--lang, -k/--top-k, -b/--batch-size,
  -i/--input, -o/--output, --json, --overwrite. Layers and heads are numbered from 1."""


def text_arguments(func):
    """Add ``TEXT...`` and ``-i/--input FILE`` (passed as ``text``, ``input_file``)."""
    func = click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, allow_dash=True),
                        default=None, metavar="FILE",
                        help="Read one sentence per line from FILE (`-` = stdin).")(func)
    return click.argument("text", nargs=-1)(func)


def top_k_option(default: int = TOP_K, help: str = "Candidates per mask."):
    """``-k/--top-k N`` (at least 1; default :data:`mlmtool.defaults.TOP_K`)."""
    return click.option("-k", "--top-k", "top_k", default=default, show_default=True,
                        type=click.IntRange(1, None), help=help)


def json_option(func):
    """``--json``: print results as JSON on stdout (passed as ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")(func)


def batch_size_option(default: int = 32):
    """``-b/--batch-size N``: sentences per forward pass."""
    return click.option("-b", "--batch-size", default=default, show_default=True, type=click.IntRange(1, None),
                        help="Sentences per forward pass (bucketed by length).")


def output_option(default: str | None = None, what: str = "the output files"):
    """``-o/--output DIR``: the directory a command writes into (passed as ``output``)."""
    return click.option("-o", "--output", "output", type=click.Path(file_okay=False), default=default,
                        show_default=default is not None, metavar="DIR",
                        help=f"Directory for {what} (created if missing).")


def read_sentences(text: tuple[str, ...] | list[str], input_file: str | None = None,
                   prompt: bool = True, required: bool = True) -> list[str]:
    """Sentences by the one grammar (:data:`GRAMMAR`).

    ``TEXT`` words are joined into one sentence; ``-`` alone reads non-empty lines from
    stdin; ``input_file`` reads the non-empty lines of a UTF-8 file (``-`` = stdin). With
    neither, ``prompt`` asks for one sentence (``Text: ``); otherwise an empty list is
    returned when not ``required``.

    Raises:
        click.UsageError: TEXT and ``-i`` together; TEXT that names an existing file (a
            one-line hint to use ``-i``, the spelling of earlier releases).
        MlmtoolError: an unreadable, non-UTF-8 or empty input.
    """
    text = tuple(text or ())
    if text and input_file:
        raise click.UsageError("give the sentence as TEXT or the sentences with -i/--input, not both")
    if text == ("-",):
        return _lines(sys.stdin.read(), "stdin")
    if text:
        if len(text) == 1 and _is_file(text[0]) and " " not in text[0]:
            raise click.UsageError(f"TEXT is a sentence; to read the sentences of the file '{text[0]}', "
                                   f"use -i {text[0]}")
        return [" ".join(text)]
    if input_file == "-":
        return _lines(sys.stdin.read(), "stdin")
    if input_file:
        path = Path(input_file)
        if not path.is_file():
            raise MlmtoolError(f"no such input file: '{input_file}'")
        try:
            return _lines(path.read_text(encoding="utf-8"), f"'{input_file}'")
        except UnicodeDecodeError:
            raise MlmtoolError(f"'{input_file}' is not UTF-8 text") from None
    if not required:
        return []
    if not prompt:
        raise MlmtoolError("no input text given: write a sentence, `-` for stdin or -i FILE")
    return [click.prompt("Text", prompt_suffix=": ")]


def _lines(content: str, where: str) -> list[str]:
    """Non-empty stripped lines of ``content``; MlmtoolError when there are none."""
    lines = [line.strip() for line in content.splitlines() if line.strip()]
    if not lines:
        raise MlmtoolError(f"the input ({where}) is empty: no sentences to process")
    return lines


def _is_file(arg: str) -> bool:
    """True when ``arg`` names an existing file (False for sentences too long to be a path)."""
    if "\n" in arg:
        return False
    try:
        return Path(arg).is_file()
    except (OSError, ValueError):
        return False


def one_sentence(texts: list[str], command: str) -> str:
    """The only sentence of ``texts``; UsageError naming ``command`` when there are several."""
    if len(texts) != 1:
        raise click.UsageError(f"{command} takes one sentence, not {len(texts)}")
    return texts[0]


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
