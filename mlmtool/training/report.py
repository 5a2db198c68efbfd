"""What fine-tuning changed: ``report.html`` and ``report.md`` in the trained model's folder.

The report holds

* the held-out masked-LM loss (nats per masked token) and perplexity before → after;
* a few held-out sentences with one word masked, picked deterministically from the eval
  split (:func:`pick_sentences`), with the start and the trained model's whole-word
  predictions side by side, each word's probability under both, and the probability of
  the word that was really there;
* the per-head attention change over those sentences (Jensen–Shannon distance of attention
  rows, :mod:`mlmtool.analysis.compare`), as a layers × heads heatmap and the top heads.

The start model is trained in place, so its side is captured *before* training
(:func:`report_start` → :func:`mlmtool.analysis.compare.run_side`) and compared with the
saved model afterwards (:func:`report_end` → :func:`write_report`). A word of several pieces
that only the trained model proposes has no start probability then (shown as ``–``).

Compute, render, save: :func:`build_report` runs the models and returns a
:class:`FinetuneReport` (plain data, ``to_dict()``); :func:`render_report_html` (template
``mlmtool/templates/report.html.j2``, the heatmap inline) and :func:`render_report_markdown`
return text; :meth:`FinetuneReport.save` writes the three files. :func:`write_report` is
the three in one call.
"""

from __future__ import annotations

import base64
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..defaults import TOP_K
from ..errors import MlmtoolError
from ..tokens import USER_MASK

__all__ = ["FinetuneReport", "ReportRow", "ReportSentence", "ReportStart", "build_report", "pick_sentences",
           "render_report_html", "render_report_markdown", "report_end", "report_start", "write_report",
           "REPORT_HTML", "REPORT_MD", "REPORT_PNG"]

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
#: The heads heatmap, next to the Markdown (the HTML carries it inline).
REPORT_PNG = "report_heads.png"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class ReportSentence:
    """A held-out sentence with one word masked.

    Attributes:
        text: the sentence with ``[MASK]`` in place of the word.
        answer: the word that was there (one vocabulary piece, so its probability is exact).
        source: the sentence as decoded from the held-out chunk.
    """

    text: str
    answer: str
    source: str


@dataclass
class ReportStart:
    """What the report needs from before training.

    Attributes:
        sentences: the picked held-out sentences.
        side: the start model's :class:`~mlmtool.analysis.compare.Side` on them, or None
            (training from scratch, or no held-out split).
        note: why there is no start side, if there is none.
    """

    sentences: list[ReportSentence] = field(default_factory=list)
    side: object = None
    note: str | None = None


def pick_sentences(tokenizer, eval_rows: Sequence[dict], n: int = 5, seed: int = 42,
                   max_tokens: int = 64) -> list[ReportSentence]:
    """Up to ``n`` held-out sentences, each with one word masked, the same for the same split.

    The held-out chunks' original tokens are restored (``labels`` where the seeded masking
    changed them), cut at special tokens into passages and decoded, and split into
    sentences after ``.``, ``!`` or ``?``; the first sentence of a chunk is skipped (a chunk
    may begin inside a sentence). A sentence qualifies with 4 to 40 words, at most
    ``max_tokens`` tokens and a maskable word: alphabetic, 3+ letters, not the first word,
    and a single vocabulary piece. ``random.Random(seed)`` picks ``n`` sentences (kept in
    corpus order) and then one maskable word in each.

    Args:
        tokenizer: the model's tokenizer; eval_rows: :func:`mlmtool.training.data.fixed_eval_rows`.
        n: sentences wanted; seed: the run's seed.

    Returns:
        :class:`ReportSentence` list (shorter, or empty, when too few qualify).
    """
    special = set(tokenizer.all_special_ids)
    found: list[tuple[str, list[int]]] = []
    seen = set()
    for row in eval_rows:
        ids = [lab if lab != -100 else t for t, lab in zip(row["input_ids"], row["labels"])]
        passages, current = [], []
        for t in ids + [next(iter(special), -1)]:
            if t in special:
                if current:
                    passages.append(current)
                current = []
            else:
                current.append(t)
        for p, passage in enumerate(passages):
            # a chunk may begin inside a passage: its first sentence may lack its start
            for sentence in _SENTENCE_END.split(tokenizer.decode(passage).strip())[1 if p == 0 else 0:]:
                sentence = sentence.strip()
                words = sentence.split()
                if sentence in seen or not 4 <= len(words) <= 40 or not sentence.endswith((".", "!", "?")):
                    continue
                if len(tokenizer(sentence, add_special_tokens=True)["input_ids"]) > max_tokens:
                    continue
                maskable = [i for i, w in enumerate(words) if i and _one_piece(tokenizer, w)]
                if maskable:
                    seen.add(sentence)
                    found.append((sentence, maskable))
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(found)), min(n, len(found))))
    out = []
    for k in chosen:
        sentence, maskable = found[k]
        words = sentence.split()
        i = rng.choice(maskable)
        answer = words[i]
        words[i] = USER_MASK
        out.append(ReportSentence(text=" ".join(words), answer=answer, source=sentence))
    return out


def _one_piece(tokenizer, word: str) -> bool:
    """True for an alphabetic word of 3+ letters that is one vocabulary piece (with or without a space)."""
    if not (word.isalpha() and len(word) >= 3):
        return False
    return any(len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in (word, " " + word))


def _answer_id(tokenizer, word: str) -> int | None:
    """The one vocabulary id of ``word`` as it follows a space (BPE) or alone (WordPiece)."""
    for w in (" " + word, word):
        ids = tokenizer(w, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return ids[0]
    return None


def report_start(lm, eval_rows: Sequence[dict], config, n: int = 5) -> ReportStart:
    """Before training: pick the sentences and keep the start model's side on them.

    Args:
        lm: the start :class:`~mlmtool.models.LoadedModel` (still untrained; left in eval
            mode with eager attention, which training then changes as it needs). Only
            process 0 (``RANK``) does the work; the others get an empty :class:`ReportStart`.
        eval_rows: the held-out rows; config: the run's ``FinetuneConfig`` (``seed``,
            ``from_scratch``).
        n: sentences in the report.
    """
    import os

    from ..analysis.compare import run_side

    if int(os.environ.get("RANK", "0")) != 0:
        return ReportStart(note="written by process 0 only")  # the report is written there
    sentences = pick_sentences(lm.tokenizer, eval_rows, n=n, seed=config.seed, max_tokens=lm.max_length)
    if not sentences:
        return ReportStart(sentences, None, "no held-out sentence to show (no held-out split, or none with a "
                                            "maskable word)")
    if config.from_scratch:
        return ReportStart(sentences, None, "trained from scratch: there is no start model to compare with")
    lm.model.set_attn_implementation("eager")
    lm.model.eval()
    try:
        return ReportStart(sentences, run_side(lm, [s.text for s in sentences], label=f"start ({lm.name})"))
    except MlmtoolError as exc:  # no attention view (FNet, BigBird, Funnel, YOSO, MRA, Reformer)
        return ReportStart(sentences, None, f"sentences and heads not compared: {exc}")


def report_end(output: str | Path, start: ReportStart, before, after,
               emit: Callable[[str], None] = lambda line: None) -> list[Path]:
    """After saving: write the report into ``output`` (the saved model is loaded from there).

    A problem the user can fix (:class:`MlmtoolError`) is reported through ``emit`` as one
    line and does not fail the finished training.

    Returns:
        The paths written (empty when the report could not be written).
    """
    try:
        return write_report(output, start.side, output, start.sentences, before, after, notes=[start.note])
    except MlmtoolError as exc:
        emit(f"Report not written: {exc}")
        return []


def write_report(output: str | Path, start, trained, sentences: Sequence[ReportSentence | str], before, after, *,
                 top_k: int = TOP_K, notes: Sequence[str | None] = (), batch_size: int = 32) -> list[Path]:
    """Write ``report.html``, ``report.md`` and ``report_heads.png`` into ``output``:
    :func:`build_report`, then :meth:`FinetuneReport.save`.

    Args:
        output: the folder (usually the trained model's); created if missing.
        start, trained, sentences, before, after, top_k, notes, batch_size: as
            :func:`build_report`.

    Returns:
        ``[report.html, report.md]`` paths, plus the PNG when heads were compared.

    Raises:
        MlmtoolError: the trained model cannot be loaded, or a sentence is unusable.
    """
    report = build_report(start, trained, sentences, before, after, top_k=top_k, notes=notes,
                          batch_size=batch_size)
    return report.save(output)


# --------------------------------------------------------------------------------------------
# The report as data


@dataclass
class ReportRow:
    """One sentence of the report: its candidates under both models and the answer's probabilities.

    Attributes:
        sentence: the :class:`ReportSentence`.
        candidates: the first mask's candidates: :class:`~mlmtool.analysis.compare.CandidateChange`
            objects when both sides were compared (``paired``), else ``(word, probability)``
            pairs of the trained model alone.
        answer_start, answer_trained: probability in [0, 1] of the held-out word (one
            vocabulary piece) at the first mask under each model; None when unknown.
        paired: True when ``candidates`` compare the two models.
    """

    sentence: ReportSentence
    candidates: list = field(default_factory=list)
    answer_start: float | None = None
    answer_trained: float | None = None
    paired: bool = True

    def to_dict(self) -> dict:
        """JSON-ready: the sentence, the answer's probabilities and the candidates (``start``
        is None for the trained model's own candidates)."""
        if self.paired:
            cands = [{"word": c.word, "start": c.score_a, "trained": c.score_b, "change": c.change}
                     for c in self.candidates]
        else:
            cands = [{"word": w, "start": None, "trained": p, "change": None} for w, p in self.candidates]
        return {"text": self.sentence.text, "answer": self.sentence.answer, "source": self.sentence.source,
                "answer_start": self.answer_start, "answer_trained": self.answer_trained, "candidates": cands}


@dataclass
class FinetuneReport:
    """What fine-tuning changed, as plain data: :func:`build_report` computes it, the renderers
    (:func:`render_report_html`, :func:`render_report_markdown`) show it, :meth:`save` writes it.

    Attributes:
        start_model: the start model's name, or None (trained from scratch / none at hand).
        trained_model: the trained model's name.
        notes: lines for the reader: ``Start model: ...; trained model: ...`` first, then the
            caller's notes and why heads were not compared, if so.
        before, after: held-out quality (:class:`~mlmtool.training.loss.EvalResult`) or None.
        rows: one :class:`ReportRow` per sentence, in order.
        comparison: the per-head attention change
            (:class:`~mlmtool.analysis.compare.ComparisonResult`, distances ``[L, H]``), or
            None when the start side is missing or could not be compared.
    """

    start_model: str | None
    trained_model: str
    notes: list[str]
    before: object = None
    after: object = None
    rows: list[ReportRow] = field(default_factory=list)
    comparison: object = None

    def heatmap_png(self) -> bytes | None:
        """The per-head change heatmap as PNG bytes (``render_compare_heatmap``), or None
        without a comparison."""
        if self.comparison is None:
            return None
        from ..render.compare_view import render_compare_heatmap

        fig = render_compare_heatmap(self.comparison, title=f"start → trained: attention change per head "
                                                            f"({len(self.rows)} sentences)")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def to_dict(self) -> dict:
        """JSON-ready: models, notes, held-out numbers (nats, perplexity), the sentences and the
        ten most changed heads (layers and heads from 1)."""
        from dataclasses import asdict

        heads = None
        if self.comparison is not None:
            heads = [{"layer": l, "head": h, "distance": d} for l, h, d in self.comparison.top()]
        return {"start_model": self.start_model, "trained_model": self.trained_model, "notes": list(self.notes),
                "before": asdict(self.before) if self.before is not None else None,
                "after": asdict(self.after) if self.after is not None else None,
                "sentences": [r.to_dict() for r in self.rows], "heads": heads}

    def save(self, output: str | Path) -> list[Path]:
        """Write ``report.html``, ``report.md`` and (with a comparison) ``report_heads.png`` into
        the folder ``output`` (created if missing); the HTML carries the same PNG inline.

        Returns:
            ``[report.html, report.md]``, plus the PNG's path when there is one.

        Raises:
            OSError: a file cannot be written.
        """
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        png = self.heatmap_png()
        if png is not None:
            (out / REPORT_PNG).write_bytes(png)
        paths = [out / REPORT_HTML, out / REPORT_MD]
        paths[0].write_text(render_report_html(self, png), encoding="utf-8")
        paths[1].write_text(render_report_markdown(self), encoding="utf-8")
        return paths + ([out / REPORT_PNG] if png is not None else [])


def build_report(start, trained, sentences: Sequence[ReportSentence | str], before, after, *, top_k: int = TOP_K,
                 notes: Sequence[str | None] = (), batch_size: int = 32) -> FinetuneReport:
    """Compute the report: both models' predictions on the sentences and the per-head change.

    Args:
        start: the start model: a :class:`~mlmtool.models.LoadedModel` (compared both ways),
            a :class:`~mlmtool.analysis.compare.Side` captured before training, or None.
        trained: the trained :class:`~mlmtool.models.LoadedModel`, or its folder (loaded).
        sentences: :class:`ReportSentence` objects, or texts with one ``[MASK]`` each.
        before, after: :class:`~mlmtool.training.loss.EvalResult` or None.
        top_k: candidates per mask (default :data:`mlmtool.defaults.TOP_K`).
        notes: lines to add (None entries are skipped).
        batch_size: sentences per forward pass (default 32).

    Returns:
        :class:`FinetuneReport`.

    Raises:
        MlmtoolError: the trained model cannot be loaded, or a sentence is unusable.
    """
    from ..models import LoadedModel, load

    items = [s if isinstance(s, ReportSentence) else ReportSentence(s, "", s) for s in sentences]
    notes = [n for n in notes if n]
    trained_lm = trained if isinstance(trained, LoadedModel) else load(str(trained))
    side_a, side_b, comparison = _compare(start, trained_lm, [s.text for s in items], top_k, batch_size, notes)
    rows = _sentence_rows(items, comparison, side_a, side_b, trained_lm.tokenizer)
    start_name = start.name if isinstance(start, LoadedModel) else getattr(start, "model_name", None)
    notes.insert(0, f"Start model: {start_name or 'none'}; trained model: {trained_lm.name}")
    return FinetuneReport(start_name, trained_lm.name, notes, before, after, rows, comparison)


def _compare(start, trained_lm, texts: list[str], top_k: int, batch_size: int, notes: list[str]):
    """``(side_a, side_b, comparison)``: the start side (run now, or as captured), the trained
    model's side and their per-head comparison; Nones where there is nothing to compare. A
    comparison that fails adds its reason to ``notes``."""
    from ..analysis.compare import compare_sides, cross_score, run_side
    from ..models import LoadedModel

    if not texts:
        return None, None, None
    try:
        side_b = run_side(trained_lm, texts, label=f"trained ({Path(str(trained_lm.name)).name})", top_k=top_k,
                          batch_size=batch_size)
        side_a = run_side(start, texts, label=f"start ({start.name})", top_k=top_k, batch_size=batch_size) \
            if isinstance(start, LoadedModel) else start
    except MlmtoolError as exc:  # e.g. "no attention view" (FNet, BigBird, Funnel, YOSO, MRA, Reformer)
        notes.append(f"sentences and heads not compared: {exc}")
        return None, None, None
    comparison = None
    if side_a is not None:
        cross_score(side_a, side_b, start if isinstance(start, LoadedModel) else None, trained_lm, batch_size)
        try:
            comparison = compare_sides(side_a, side_b)
        except MlmtoolError as exc:
            notes.append(f"heads not compared: {exc}")
    return side_a, side_b, comparison


def _sentence_rows(items, comparison, side_a, side_b, tokenizer) -> list[ReportRow]:
    """Per sentence, the candidates of the first mask and the held-out word's probability."""
    rows = []
    for i, s in enumerate(items):
        row = ReportRow(s)
        change = next((c for c in (comparison.changes if comparison else []) if c.sentence == i + 1 and c.mask == 1),
                      None)
        if change is not None:
            row.candidates = change.candidates
        elif side_b is not None and side_b.predictions[i] is not None:
            row.paired = False
            row.candidates = [(c.word, c.score) for c in side_b.predictions[i].masks[0].candidates]
        answer = _answer_id(tokenizer, s.answer) if s.answer else None
        if answer is not None:
            row.answer_start = _prob(side_a, i, answer)
            row.answer_trained = _prob(side_b, i, answer)
        rows.append(row)
    return rows


def _prob(side, i: int, token_id: int) -> float | None:
    """Probability of the one-piece word ``token_id`` at sentence ``i``'s first mask, or None."""
    import math

    lp = side.log_prob(i, 0, [token_id]) if side is not None else None
    return None if lp is None else math.exp(lp)


# --------------------------------------------------------------------------------------------
# Rendering


def _pct(p: float | None) -> str:
    return "–" if p is None else f"{p:.1%}"


def _change(d: float | None) -> str:
    return "–" if d is None else f"{100 * d:+.1f}"


def _loss_rows(before, after) -> list[tuple[str, str, str, str]]:
    """(measure, before, after, change) for the held-out table."""
    if before is None or after is None:
        return []
    return [("loss (nats per masked token)", f"{before.loss:.4f}", f"{after.loss:.4f}",
             f"{after.loss - before.loss:+.4f}"),
            ("perplexity", f"{before.perplexity:.2f}", f"{after.perplexity:.2f}",
             f"{after.perplexity - before.perplexity:+.2f}")]


def render_report_markdown(report: FinetuneReport) -> str:
    """The report as Markdown (the heatmap linked as ``report_heads.png`` beside it).

    Args:
        report: from :func:`build_report`.

    Returns:
        The Markdown text, ending with a newline.
    """
    md = lambda t: str(t).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")  # noqa: E731
    before, after, comparison = report.before, report.after, report.comparison
    lines = ["# Fine-tuning report", ""]
    lines += [f"- {md(n)}" for n in report.notes] + ([""] if report.notes else [])
    lines += ["## Held-out masked-LM quality, before → after", ""]
    table = _loss_rows(before, after)
    if table:
        lines += ["| | before | after | change |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table]
        lines += ["", f"Measured on {after.tokens:,} masked held-out tokens (the same masking before and after)."]
    else:
        lines += ["No held-out split (eval_fraction 0): nothing measured."]
    lines += ["", "## Predictions on held-out sentences", ""]
    for k, row in enumerate(report.rows, 1):
        s = row.sentence
        lines += [f"**{k}.** {md(s.text)}", ""]
        if s.answer:
            lines += [f"The held-out word: **{md(s.answer)}**, probability {_pct(row.answer_start)} → "
                      f"{_pct(row.answer_trained)}", ""]
        if row.paired and row.candidates:
            lines += ["| word | start | trained | change |", "| --- | ---: | ---: | ---: |"]
            lines += [f"| {md(c.word)} | {_pct(c.score_a)} | {_pct(c.score_b)} | {_change(c.change)} |"
                      for c in row.candidates]
        elif row.candidates:
            lines += ["| word | trained |", "| --- | ---: |"] + [f"| {md(w)} | {_pct(p)} |" for w, p in row.candidates]
        lines += [""]
    if comparison is not None:
        from ..analysis.compare import METHOD

        lines += ["## Attention heads: how much each changed", "",
                  f"{METHOD}, over the {len(report.rows)} sentences above (layers and heads from 1).", "",
                  f"![per-head change]({REPORT_PNG})", "", "| head | distance |", "| --- | ---: |"]
        lines += [f"| L{l}-H{h} | {d:.4f} |" for l, h, d in comparison.top()]
    return "\n".join(lines) + "\n"


def render_report_html(report: FinetuneReport, png: bytes | None = None):
    """The report as one self-contained HTML page (template ``mlmtool/templates/report.html.j2``;
    the heatmap inline as a base64 ``data:`` image; no script, no request).

    Args:
        report: from :func:`build_report`.
        png: the heatmap's PNG bytes when already rendered (:meth:`FinetuneReport.heatmap_png`);
            default: rendered here when there is a comparison.

    Returns:
        :class:`~mlmtool.render._document.HTML` (a ``str`` that Jupyter shows and that can
        ``.save(path)``).
    """
    from ..analysis.compare import CITATION, METHOD
    from ..render._document import HTML, template

    if png is None and report.comparison is not None:
        png = report.heatmap_png()
    page = template("report.html.j2").render(
        report=report, loss_rows=_loss_rows(report.before, report.after), pct=_pct, change=_change,
        heads=report.comparison.top() if report.comparison is not None else [], method=METHOD, citation=CITATION,
        png=base64.b64encode(png).decode("ascii") if png else None)
    return HTML(page + "\n", title="Fine-tuning report")  # Jinja drops the template's last newline
