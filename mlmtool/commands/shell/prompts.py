"""Asking: every question the shell puts, answered through click's own prompt types.

Validation is click's: :func:`click.prompt` with a :class:`click.ParamType` converts each
answer or prints ``Error: <why>`` and asks again (:class:`click.Choice`,
:class:`click.IntRange`, :class:`click.Path`, and the small types below for what click has
no type for: a sentence with a mask, word pairs, a model to load). ``click.prompt`` turns
Ctrl-C and end of input (Ctrl-D) into :class:`click.Abort`, which ends the shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from ...errors import MlmtoolError

#: Menu answers that mean "leave".
EXIT_ALIASES = {"q": "0", "quit": "0", "exit": "0"}


class Sentence(click.ParamType):
    """A line of text, stripped; blank answers are refused (unless ``optional``)."""

    name = "text"

    def __init__(self, optional: bool = False):
        self.optional = optional

    def convert(self, value: Any, param, ctx) -> str:
        text = str(value).strip()
        if not text and not self.optional:
            self.fail("please type something (Ctrl-D to leave)", param, ctx)
        return text


class MaskedSentence(Sentence):
    """A sentence that holds ``[MASK]`` (or the model's own mask token)."""

    def __init__(self, user_mask: str, mask_token: str):
        super().__init__()
        self.masks = (user_mask, mask_token)

    def convert(self, value: Any, param, ctx) -> str:
        text = super().convert(value, param, ctx)
        if not any(m in text for m in self.masks):
            self.fail(f"the sentence needs a {self.masks[0]}, e.g. \"The {self.masks[0]} sat on the mat.\"",
                      param, ctx)
        return text


class OrEmpty(click.ParamType):
    """``inner``, or ``""`` for an empty answer (an optional file, an optional number)."""

    def __init__(self, inner: click.ParamType):
        self.inner = inner
        self.name = inner.name

    def convert(self, value: Any, param, ctx):
        if value is None or str(value).strip() == "":
            return ""
        return self.inner.convert(str(value).strip(), param, ctx)


class OutputFile(click.Path):
    """A file name to write (not a directory), ending in ``suffix`` when one is given."""

    def __init__(self, suffix: str | None = None):
        super().__init__(dir_okay=False)
        self.suffix = suffix

    def convert(self, value: Any, param, ctx) -> str:
        path = super().convert(str(value).strip(), param, ctx)
        if self.suffix and not str(path).lower().endswith(self.suffix):
            self.fail(f"give a file name ending in {self.suffix}", param, ctx)
        return str(path)


class WordPairs(click.ParamType):
    """``"quickly:ran, big:car"`` → ``[("quickly", "ran"), ("big", "car")]`` (empty: none).

    Each pair is checked by :func:`mlmtool.analysis.heads.parse_pair` (alternatives with ``|``).
    """

    name = "pairs"

    def convert(self, value: Any, param, ctx) -> list[tuple[str, str]]:
        if isinstance(value, list):
            return value
        from ...analysis.heads import parse_pair

        try:
            return [parse_pair(p.strip()) for p in str(value).split(",") if p.strip()]
        except MlmtoolError as exc:
            self.fail(str(exc), param, ctx)


class ModelAnswer(click.ParamType):
    """A registry number or name, or a model directory, converted by *loading* it.

    Args:
        names: the registry names, numbered from 1 in the menu.
        load: ``load(model) -> LoadedModel``; its :class:`MlmtoolError` (no such directory,
            not available offline) becomes click's ``Error:`` line and the question again.
    """

    name = "model"

    def __init__(self, names: list[str], load: Callable[[str], Any]):
        self.names = names
        self.load = load

    def convert(self, value: Any, param, ctx):
        answer = str(value).strip()
        if answer.isdigit():
            if not 1 <= int(answer) <= len(self.names):
                self.fail(f"type a number from 1 to {len(self.names)}, a name or a directory", param, ctx)
            answer = self.names[int(answer) - 1]
        if not answer:
            self.fail("type a number, a name or a directory", param, ctx)
        try:
            return self.load(answer)
        except MlmtoolError as exc:
            self.fail(str(exc).splitlines()[0], param, ctx)


# ---------------------------------------------------------------- questions

def text(question: str, optional: bool = False) -> str:
    """One line of text; empty is allowed (returned as ``""``) only when ``optional``."""
    if optional:
        return click.prompt(question, default="", show_default=False, type=Sentence(optional=True))
    return click.prompt(question, type=Sentence())


def masked_sentence(question: str, user_mask: str, mask_token: str) -> str:
    """A sentence with a mask; others are refused with an example."""
    return click.prompt(question, type=MaskedSentence(user_mask, mask_token))


def count(question: str, default: int, low: int = 1) -> int:
    """A whole number of at least ``low``."""
    return click.prompt(question, default=default, type=click.IntRange(low, None))


def minutes(question: str) -> float | None:
    """A positive number of minutes, or None for an empty answer."""
    answer = click.prompt(question, default="", show_default=False,
                          type=OrEmpty(click.FloatRange(0, None, min_open=True)))
    return None if answer == "" else answer


def choose(question: str, options: list[tuple[str, str]], aliases: dict[str, str] | None = None) -> str:
    """Show ``key) label`` lines and return the key chosen (an alias gives its key)."""
    for key, label in options:
        click.echo(f"  {key}) {label}")
    aliases = aliases or {}
    keys = [k for k, _ in options] + list(aliases)
    answer = click.prompt(question, type=click.Choice(keys, case_sensitive=False), show_choices=False)
    return aliases.get(answer, answer)


def existing_file(question: str, optional: bool = False) -> str:
    """The path of a file that exists (``""`` for an empty answer when ``optional``)."""
    kind = click.Path(exists=True, dir_okay=False)
    if optional:
        return click.prompt(question, default="", show_default=False, type=OrEmpty(kind))
    return click.prompt(question, type=kind)


def output_file(question: str, default: str, suffix: str | None = None) -> tuple[str, bool]:
    """A file to write; an existing one is replaced only after a yes.

    Returns:
        ``(path, overwrite)``: overwrite is True when the user agreed to replace the file.
    """
    while True:
        path = click.prompt(question, default=default, type=OutputFile(suffix))
        if not Path(path).exists():
            return path, False
        if click.confirm(f"'{path}' exists. Replace it?", default=False):
            return path, True


def output_dir(question: str, default: str) -> tuple[str, bool]:
    """A folder to write into; one that has files is written over only after a yes.

    Returns:
        ``(path, overwrite)``: overwrite is True when the user agreed to write over files.
    """
    while True:
        path = click.prompt(question, default=default, type=click.Path(file_okay=False))
        folder = Path(path)
        if not (folder.is_dir() and any(folder.iterdir())):
            return path, False
        if click.confirm(f"'{path}' already has files. Write over them?", default=False):
            return path, True


def sentences() -> list[str]:
    """Sentences typed one per line up to an empty line, or a file's lines (one per line).

    A first answer that names an existing file reads that file, as ``-i FILE`` does on the
    command line (:func:`mlmtool.commands._common.read_sentences`).

    Raises:
        MlmtoolError: the file is empty or not UTF-8.
    """
    from .._common import read_sentences

    click.echo("Type sentences, one per line, and an empty line to finish (or give a file path).")
    lines: list[str] = []
    while True:
        line = click.prompt(f"{len(lines) + 1}", default="", show_default=False, prompt_suffix="> ",
                            type=Sentence(optional=True))
        if not line:
            if lines:
                return lines
            click.echo("At least one sentence, please.")
        elif not lines and _is_file(line):
            return read_sentences((), input_file=line)
        else:
            lines.append(line)


def _is_file(answer: str) -> bool:
    try:
        return Path(answer).is_file()
    except (OSError, ValueError):  # a sentence too long to be a path
        return False


def model(names: list[str], load: Callable[[str], Any]):
    """Ask for a registry number/name or a model directory until one loads; return it."""
    return click.prompt("Model", type=ModelAnswer(names, load))
