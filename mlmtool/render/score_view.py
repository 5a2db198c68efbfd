"""Views of sentence scores (PLL): coloured bars per token for the terminal, HTML and PNG.

Each takes :class:`mlmtool.analysis.score.SentenceScore` objects (plain data, never a
model). Every token gets a bar whose length is its surprisal ``-log p`` (natural log, nats;
longer = the model found the token less expected), on one scale for the whole view, and a
colour from green (probable, ``p`` near 1) through yellow to red (``p`` of ``e^-8`` ≈ 0.0003
or less). The HTML page is one self-contained file (inline CSS, no scripts).
"""

from __future__ import annotations

import html
import math
from typing import Sequence

from ..analysis.score import SentenceScore
from ._document import HTML, scoped_fragment
from .fonts import CSS_MONO, CSS_SANS, use_in_matplotlib

#: Surprisal (nats) at which the colour reaches full red.
RED_AT = 8.0
_STOPS = ((0.0, (44, 160, 44)), (0.5, (230, 184, 0)), (1.0, (214, 39, 40)))  # green, yellow, red


def token_colour(log_prob: float) -> str:
    """The ``#rrggbb`` colour of a token with natural-log probability ``log_prob`` (≤ 0)."""
    t = min(1.0, max(0.0, -log_prob / RED_AT))
    for (t0, c0), (t1, c1) in zip(_STOPS, _STOPS[1:]):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            return "#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(c0, c1))
    return "#%02x%02x%02x" % _STOPS[-1][1]


def _as_list(scores) -> list[SentenceScore]:
    return [scores] if isinstance(scores, SentenceScore) else list(scores)


def _scale(scores: Sequence[SentenceScore]) -> float:
    """The largest surprisal in the view (the full bar length), at least 1 nat."""
    return max([1.0] + [-t.log_prob for s in scores for t in s.tokens])


def render_score_text(scores: SentenceScore | Sequence[SentenceScore], width: int = 30):
    """A rich renderable: per sentence its PLL and PPPL, then one coloured bar per token.

    Args:
        scores: from :func:`mlmtool.score_sentences`.
        width: characters of the longest bar (default 30).

    Returns:
        A ``rich.console.Group``; print it with ``rich.console.Console().print(...)``.
    """
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    scores = _as_list(scores)
    scale = _scale(scores)
    parts = []
    for n, s in enumerate(scores):
        if n:
            parts.append(Text(""))
        head = Text()
        head.append(s.text, style="bold")
        head.append(f"   PLL {s.pll:.3f}   PPPL {s.pppl:.2f}   ({len(s.tokens)} tokens, {s.variant})", style="dim")
        parts.append(head)
        table = Table(box=None, pad_edge=False, show_header=False)
        table.add_column("token")
        table.add_column("log p", justify="right")
        table.add_column("bar")
        for t in s.tokens:
            cells = max(1, round(-t.log_prob / scale * width)) if t.log_prob < 0 else 0
            table.add_row(escape(t.token), f"{t.log_prob:.3f}", Text("█" * cells, style=token_colour(t.log_prob)))
        parts.append(table)
    parts.append(Text("bar = -log p of each token with it masked (longer = more surprising)", style="dim"))
    return Group(*parts)


def render_score_html(scores: SentenceScore | Sequence[SentenceScore], title: str = "mlmtool score") -> HTML:
    """A self-contained HTML page: per sentence its PLL and PPPL and a bar per token.

    Hovering a bar shows the token's probability.

    Returns:
        :class:`mlmtool.render.embed_view.HTML` (``_repr_html_``, ``str()``, ``.save(path)``).
    """
    scores = _as_list(scores)
    scale = _scale(scores)
    blocks = []
    for s in scores:
        rows = []
        for t in s.tokens:
            share = min(100.0, -t.log_prob / scale * 100)
            rows.append(
                f'<tr><td class="tok">{html.escape(t.token)}</td><td class="lp">{t.log_prob:.3f}</td>'
                f'<td class="bar"><span style="width:{share:.1f}%;background:{token_colour(t.log_prob)}" '
                f'title="p = {math.exp(t.log_prob):.4g}"></span></td></tr>')
        blocks.append(
            f'<section><h2>{html.escape(s.text)}</h2><p class="sum">PLL <b>{s.pll:.3f}</b> &middot; PPPL '
            f'<b>{s.pppl:.2f}</b> &middot; {len(s.tokens)} tokens &middot; {html.escape(s.variant)}</p>'
            f'<table>{"".join(rows)}</table></section>')
    css = (f"body{{font:14px/1.4 {CSS_SANS};margin:2em;color:#222}}h1{{font-size:18px}}"
           "h2{font-size:15px;margin:1.4em 0 .2em}.sum{color:#555;margin:0 0 .5em}table{border-collapse:collapse}"
           f"td{{padding:1px 8px 1px 0}}.tok{{font-family:{CSS_MONO}}}.lp{{text-align:right;color:#555;"
           "font-variant-numeric:tabular-nums}.bar{width:320px}.bar span{display:block;height:12px;"
           "border-radius:2px;min-width:1px}.note{color:#777}")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{css}</style></head><body><h1>{html.escape(title)}</h1>{"".join(blocks)}'
            '<p class="note">Bar length: -log p of each token with it masked (pseudo-log-likelihood, '
            'Salazar et al. 2020); green = probable, red = surprising.</p></body></html>\n')
    return HTML(page, scoped_fragment(page, "mlmtool-score"), title=title)


def render_score_png(scores: SentenceScore | Sequence[SentenceScore], ax=None):
    """Bar chart of each token's surprisal ``-log p``, one panel per sentence.

    Args:
        scores: from :func:`mlmtool.score_sentences`.
        ax: a matplotlib ``Axes`` to draw one sentence on; None (default) makes a new
            ``Figure`` (no pyplot) with one panel per sentence.

    Returns:
        The ``matplotlib.figure.Figure``; save it with ``fig.savefig("score.png")``.
    """
    from matplotlib.figure import Figure
    use_in_matplotlib(ax)  # fonts for CJK and other scripts

    scores = _as_list(scores)
    if ax is not None:
        axes, fig = [ax], ax.figure
        scores = scores[:1]
    else:
        widest = max(len(s.tokens) for s in scores)
        fig = Figure(figsize=(max(5.0, 0.45 * widest + 1.5), 2.6 * len(scores)), layout="constrained")
        axes = fig.subplots(len(scores), 1, squeeze=False)[:, 0]
    top = _scale(scores)
    for a, s in zip(axes, scores):
        xs = range(len(s.tokens))
        a.bar(xs, [-t.log_prob for t in s.tokens], color=[token_colour(t.log_prob) for t in s.tokens], width=0.75)
        a.set_xticks(list(xs), [t.token for t in s.tokens], rotation=45 if len(s.tokens) > 8 else 0,
                     ha="right" if len(s.tokens) > 8 else "center", fontsize=9)
        a.set_ylim(0, top * 1.08)
        a.set_ylabel("-log p (nats)")
        title = s.text if len(s.text) <= 90 else s.text[:87] + "..."
        a.set_title(f"{title}\nPLL {s.pll:.2f}, PPPL {s.pppl:.2f}", fontsize=10)
        a.grid(True, axis="y", color="#e6e6e6", linewidth=0.6)
        a.set_axisbelow(True)
    return fig
