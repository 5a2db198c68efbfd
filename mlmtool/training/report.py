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
"""

from __future__ import annotations

import base64
import html
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import MlmtoolError
from ..tokens import USER_MASK

__all__ = ["ReportSentence", "ReportStart", "pick_sentences", "report_start", "report_end", "write_report",
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
    return ReportStart(sentences, run_side(lm, [s.text for s in sentences], label=f"start ({lm.name})"))


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
                 top_k: int = 5, notes: Sequence[str | None] = (), batch_size: int = 32) -> list[Path]:
    """Write ``report.html``, ``report.md`` and ``report_heads.png`` into ``output``.

    Args:
        output: the folder (usually the trained model's).
        start: the start model: a :class:`~mlmtool.models.LoadedModel` (compared both ways),
            a :class:`~mlmtool.analysis.compare.Side` captured before training, or None.
        trained: the trained :class:`~mlmtool.models.LoadedModel`, or its folder (loaded).
        sentences: :class:`ReportSentence` objects, or texts with one ``[MASK]`` each.
        before, after: :class:`~mlmtool.training.loss.EvalResult` or None.
        top_k: candidates per mask.
        notes: lines to add (None entries are skipped).

    Returns:
        ``[report.html, report.md]`` paths, plus the PNG when heads were compared.

    Raises:
        MlmtoolError: the trained model cannot be loaded, or a sentence is unusable.
    """
    from ..analysis.compare import compare_sides, cross_score, run_side
    from ..models import LoadedModel, load

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    items = [s if isinstance(s, ReportSentence) else ReportSentence(s, "", s) for s in sentences]
    texts = [s.text for s in items]
    notes = [n for n in notes if n]
    trained_lm = trained if isinstance(trained, LoadedModel) else load(str(trained))
    comparison, side_a, side_b = None, None, None
    if texts:
        side_b = run_side(trained_lm, texts, label=f"trained ({Path(str(trained_lm.name)).name})", top_k=top_k,
                          batch_size=batch_size)
        side_a = run_side(start, texts, label=f"start ({start.name})", top_k=top_k, batch_size=batch_size) \
            if isinstance(start, LoadedModel) else start
        if side_a is not None:
            cross_score(side_a, side_b, start if isinstance(start, LoadedModel) else None, trained_lm, batch_size)
            try:
                comparison = compare_sides(side_a, side_b)
            except MlmtoolError as exc:
                notes.append(f"heads not compared: {exc}")
    rows = _sentence_rows(items, comparison, side_a, side_b, trained_lm.tokenizer)
    start_name = start.name if isinstance(start, LoadedModel) else getattr(start, "model_name", None)
    notes.insert(0, f"Start model: {start_name or 'none'}; trained model: {trained_lm.name}")
    png = None
    if comparison is not None:
        from ..render.compare_view import render_compare_heatmap

        fig = render_compare_heatmap(comparison, title=f"start → trained: attention change per head "
                                                       f"({len(texts)} sentences)")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        png = out / REPORT_PNG
        png.write_bytes(buf.getvalue())
    paths = [out / REPORT_HTML, out / REPORT_MD]
    paths[0].write_text(_html(before, after, rows, comparison, png, notes), encoding="utf-8")
    paths[1].write_text(_markdown(before, after, rows, comparison, png, notes), encoding="utf-8")
    return paths + ([png] if png else [])


@dataclass
class _Row:
    """One sentence of the report: its candidates under both models and the answer's probabilities."""

    sentence: ReportSentence
    candidates: list = field(default_factory=list)  # CandidateChange, or (word, score) of the trained side only
    answer_a: float | None = None
    answer_b: float | None = None
    paired: bool = True


def _sentence_rows(items, comparison, side_a, side_b, tokenizer) -> list[_Row]:
    """Per sentence, the candidates of the first mask and the held-out word's probability."""
    rows = []
    for i, s in enumerate(items):
        row = _Row(s)
        change = next((c for c in (comparison.changes if comparison else []) if c.sentence == i + 1 and c.mask == 1),
                      None)
        if change is not None:
            row.candidates = change.candidates
        elif side_b is not None and side_b.predictions[i] is not None:
            row.paired = False
            row.candidates = [(c.word, c.score) for c in side_b.predictions[i].masks[0].candidates]
        answer = _answer_id(tokenizer, s.answer) if s.answer else None
        if answer is not None:
            row.answer_a = _prob(side_a, i, answer)
            row.answer_b = _prob(side_b, i, answer)
        rows.append(row)
    return rows


def _prob(side, i: int, token_id: int) -> float | None:
    """Probability of the one-piece word ``token_id`` at sentence ``i``'s first mask, or None."""
    import math

    lp = side.log_prob(i, 0, [token_id]) if side is not None else None
    return None if lp is None else math.exp(lp)


def _pct(p: float | None) -> str:
    return "–" if p is None else f"{p:.1%}"


def _change(d: float | None) -> str:
    return "–" if d is None else f"{100 * d:+.1f}"


def _loss_rows(before, after) -> list[tuple[str, str, str, str]]:
    """(measure, before, after, change) for the held-out table."""
    if before is None or after is None:
        return []
    return [("loss (nats per masked token)", f"{before.loss:.4f}", f"{after.loss:.4f}", f"{after.loss - before.loss:+.4f}"),
            ("perplexity", f"{before.perplexity:.2f}", f"{after.perplexity:.2f}",
             f"{after.perplexity - before.perplexity:+.2f}")]


def _markdown(before, after, rows: list[_Row], comparison, png, notes) -> str:
    """The report as Markdown."""
    md = lambda t: str(t).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")  # noqa: E731
    lines = ["# Fine-tuning report", ""]
    lines += [f"- {md(n)}" for n in notes] + ([""] if notes else [])
    lines += ["## Held-out masked-LM quality, before → after", ""]
    table = _loss_rows(before, after)
    if table:
        lines += ["| | before | after | change |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table]
        lines += ["", f"Measured on {after.tokens:,} masked held-out tokens (the same masking before and after)."]
    else:
        lines += ["No held-out split (eval_fraction 0): nothing measured."]
    lines += ["", "## Predictions on held-out sentences", ""]
    for k, row in enumerate(rows, 1):
        s = row.sentence
        lines += [f"**{k}.** {md(s.text)}", ""]
        if s.answer:
            lines += [f"The held-out word: **{md(s.answer)}**, probability {_pct(row.answer_a)} → {_pct(row.answer_b)}", ""]
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
                  f"{METHOD}, over the {len(rows)} sentences above (layers and heads from 1).", "",
                  f"![per-head change]({png.name})", "", "| head | distance |", "| --- | ---: |"]
        lines += [f"| L{l}-H{h} | {d:.4f} |" for l, h, d in comparison.top(10)]
    return "\n".join(lines) + "\n"


def _html(before, after, rows: list[_Row], comparison, png, notes) -> str:
    """The report as one self-contained HTML page (the heatmap inline; no script, no request)."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
             "img-src data:\">", "<title>Fine-tuning report</title>",
             "<style>body{font:14px/1.45 system-ui,sans-serif;margin:16px 24px;color:#1d1d1f;max-width:1100px}"
             "table{border-collapse:collapse;margin:6px 0 14px}th,td{padding:2px 9px;text-align:right}"
             "th{color:#666;font-weight:normal}td.w{text-align:left;font-family:ui-monospace,monospace}"
             "tr.answer td{font-weight:bold;background:#eef5ff}.up{color:#1a7f37}.down{color:#b3261e}"
             ".note{background:#fff6dc;border-left:4px solid #e0b000;padding:4px 10px}</style></head><body>",
             "<h1>Fine-tuning report</h1>"]
    parts += [f'<p class="note">{e(n)}</p>' for n in notes]
    parts.append("<h2>Held-out masked-LM quality, before &rarr; after</h2>")
    table = _loss_rows(before, after)
    if table:
        parts.append("<table><tr><th></th><th>before</th><th>after</th><th>change</th></tr>")
        parts += [f'<tr><td class="w">{e(a)}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>' for a, b, c, d in table]
        parts.append(f"</table><p>Measured on {after.tokens:,} masked held-out tokens (the same masking before "
                     "and after).</p>")
    else:
        parts.append("<p>No held-out split (eval_fraction 0): nothing measured.</p>")
    parts.append("<h2>Predictions on held-out sentences</h2>")
    for k, row in enumerate(rows, 1):
        s = row.sentence
        parts.append(f"<p><b>{k}.</b> {e(s.text)}</p>")
        if s.answer:
            parts.append(f"<p>The held-out word: <b>{e(s.answer)}</b>, probability {_pct(row.answer_a)} &rarr; "
                         f"{_pct(row.answer_b)}</p>")
        if row.paired and row.candidates:
            parts.append("<table><tr><th>word</th><th>start</th><th>trained</th><th>change</th></tr>")
            for c in row.candidates:
                cls = ' class="answer"' if s.answer and c.word.casefold() == s.answer.casefold() else ""
                tone = "" if c.change is None else ("up" if c.change >= 0 else "down")
                parts.append(f'<tr{cls}><td class="w">{e(c.word)}</td><td>{_pct(c.score_a)}</td>'
                             f'<td>{_pct(c.score_b)}</td><td class="{tone}">{_change(c.change)}</td></tr>')
            parts.append("</table>")
        elif row.candidates:
            parts.append("<table><tr><th>word</th><th>trained</th></tr>")
            parts += [f'<tr><td class="w">{e(w)}</td><td>{_pct(p)}</td></tr>' for w, p in row.candidates]
            parts.append("</table>")
    if comparison is not None:
        from ..analysis.compare import CITATION, METHOD

        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts += ["<h2>Attention heads: how much each changed</h2>",
                  f"<p>{e(METHOD)}, over the {len(rows)} sentences above (layers and heads from 1). "
                  f"Sources: {e(CITATION)}.</p>", f'<img alt="per-head change" src="data:image/png;base64,{data}">',
                  "<table><tr><th>head</th><th>distance</th></tr>"]
        parts += [f'<tr><td class="w">L{l}-H{h}</td><td>{d:.4f}</td></tr>' for l, h, d in comparison.top(10)]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
