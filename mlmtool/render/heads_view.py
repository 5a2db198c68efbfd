"""Render head scores: layers × heads heatmaps (matplotlib) and the ``analysis.md`` report.

Everything here takes a :class:`mlmtool.analysis.heads.scores.HeadScores` (plain data, never a model).
Heatmap functions return a matplotlib ``Figure`` (drawn into ``ax`` when given, the Captum
``plt_fig_axis`` habit); :func:`render_heads_markdown` returns the report as a string; writing
files is :func:`save_heads_report`. Layers and heads are numbered from 1 everywhere here
(``L2-H9`` = layer 2, head 9); the arrays inside ``HeadScores`` count from 0.

Colour map: viridis (van der Walt & Smith, matplotlib), lighter = higher, on a fixed 0..1
scale for fractions so heatmaps of different patterns and models compare directly.

What each architecture's attention is travels with the scores as data
(:attr:`HeadScores.layer_labels`, :attr:`HeadScores.notes`): where a model has local
sliding-window layers (ModernBERT) the layer axis reads ``2 · local ±64``, and the notes
(local layers, grouped-query attention: heads of a group share keys and values) are written
under each heatmap and at the top of ``analysis.md``. For BERT both are empty and nothing
changes.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np

from ..analysis.heads.metrics import PATTERNS
from ..analysis.heads.scores import (BROAD, CITATION, DEFAULT_BROAD_THRESHOLD, DEFAULT_THRESHOLD, MIXED, READINGS,
                                     HeadExample, HeadScores, PairScores)
from .fonts import use_in_matplotlib

#: Metrics drawn as heatmaps, in report order.
HEATMAP_METRICS: tuple[str, ...] = PATTERNS + ("entropy",)

REPORT_NAME = "analysis.md"
JSON_NAME = "heads.json"
LABELS_NAME = "labels.png"


def heatmap_filename(metric: str) -> str:
    """File name of a metric's heatmap, e.g. ``heatmap_next.png``."""
    return f"heatmap_{metric}.png"


def pair_filename(index: int, source: str, target: str) -> str:
    """File name of the heatmap for the ``index``-th pair (from 1), e.g. ``pair1_quickly-ran.png``."""
    slug = re.sub(r"[^\w+-]+", "_", f"{source}-{target}".replace("|", "+")).strip("_")[:60] or "pair"
    return f"pair{index}_{slug}.png"


def syntax_filename(relation: str) -> str:
    """File name of a relation's probe heatmap, e.g. ``syntax_nsubj.png``, ``syntax_ADV-VERB.png``."""
    slug = re.sub(r"[^\w+-]+", "_", relation.replace(":", "-").replace("|", "+")).strip("_")[:60] or "relation"
    return f"syntax_{slug}.png"


def report_filenames(pairs: list[tuple[str, str]] | None = None, relations: list[str] | None = None) -> list[str]:
    """Every file :func:`save_heads_report` writes (for overwrite checks before computing).

    Args:
        pairs: the word pairs; relations: the relations (and tag pairs) of the syntax probe.
    """
    names = [REPORT_NAME, JSON_NAME, LABELS_NAME] + [heatmap_filename(m) for m in HEATMAP_METRICS]
    names += [pair_filename(i, s, t) for i, (s, t) in enumerate(pairs or [], 1)]
    return names + [syntax_filename(r) for r in relations or []]


def head_name(layer: int, head: int) -> str:
    """``L{layer}-H{head}`` (both from 1)."""
    return f"L{layer}-H{head}"


# --------------------------------------------------------------------------------------------
# Figures


def layer_ticks(layers: int, layer_labels: list[str] | None = None) -> list[str]:
    """Layer-axis labels from 1: ``["1", "2", ...]``, or with the layer's kind where the model
    has local layers (``["1 · global", "2 · local ±64", ...]``, from :attr:`HeadScores.layer_labels`)."""
    if not layer_labels:
        return [str(l + 1) for l in range(layers)]
    return [f"{l + 1} · {layer_labels[l]}" for l in range(layers)]


def _new_figure(width: float, height: float, layer_labels, notes):
    """A constrained-layout ``Figure`` (no pyplot state), wider for layer kinds, taller for notes;
    the notes are written under it, one bullet each, wrapped to its width."""
    from matplotlib.figure import Figure

    width += 0.9 if layer_labels else 0.0
    lines = [ln for note in notes or [] for ln in textwrap.wrap("• " + note, max(40, int(width * 15)),
                                                                 subsequent_indent="   ")]
    fig = Figure(figsize=(width, height + 0.14 * len(lines)), dpi=100, layout="constrained")
    if lines:
        fig.supxlabel("\n".join(lines), fontsize=7, x=0.01, ha="left")
    return fig


def render_heatmap(matrix: np.ndarray, title: str, ax=None, vmin: float | None = 0.0,
                   vmax: float | None = 1.0, colorbar_label: str = "fraction of attention",
                   fmt: str = "{:.2f}", layer_labels: list[str] | None = None, notes: list[str] | None = None):
    """Draw a ``[layers, heads]`` matrix as an annotated heatmap.

    Args:
        matrix: ``float [layers, heads]`` (row 0 = layer 1); NaN cells are left blank.
        title: figure title.
        ax: a matplotlib ``Axes`` to draw into; default a new figure (no pyplot state).
        vmin, vmax: colour scale (default 0..1); None = the data's range.
        colorbar_label: the colour bar's caption (the unit).
        fmt: format of the value printed in each cell.
        layer_labels: per layer ``"global"`` / ``"local ±w"`` (:func:`layer_ticks`); default
            None = plain layer numbers.
        notes: lines written under a new figure (not when ``ax`` is given): what the
            scores assume about the model's attention. Default none.

    Returns:
        The matplotlib ``Figure``.
    """
    use_in_matplotlib(ax)  # fonts for CJK and other scripts

    layers, heads = matrix.shape
    if ax is None:
        ax = _new_figure(1.2 + 0.55 * heads, 1.3 + 0.45 * layers, layer_labels, notes).add_subplot()
    fig = ax.figure
    data = np.ma.masked_invalid(np.asarray(matrix, dtype=float))
    lo = float(np.nanmin(matrix)) if vmin is None and data.count() else vmin
    hi = float(np.nanmax(matrix)) if vmax is None and data.count() else vmax
    image = ax.imshow(data, cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
    ax.set_xticks(range(heads), [str(h + 1) for h in range(heads)])
    ax.set_yticks(range(layers), layer_ticks(layers, layer_labels))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=10)
    span = (hi - lo) if (hi is not None and lo is not None and hi > lo) else 1.0
    size = 7 if heads <= 12 else 5
    for (l, h), value in np.ndenumerate(np.asarray(matrix, dtype=float)):
        if np.isnan(value):
            continue
        light = (value - (lo or 0.0)) / span > 0.6
        ax.text(h, l, fmt.format(value), ha="center", va="center", fontsize=size,
                color="black" if light else "white")
    fig.colorbar(image, ax=ax, label=colorbar_label, shrink=0.9)
    return fig


def render_metric_heatmap(scores: HeadScores, metric: str, ax=None):
    """Layers × heads heatmap of one metric of :data:`mlmtool.analysis.heads.metrics.METRICS`.

    Args:
        scores: from :func:`mlmtool.score_heads`; metric: a metric name (entropy is in bits,
            the others are shares in 0..1); ax: an optional matplotlib axes to draw into.

    Returns:
        The matplotlib ``Figure`` (see :func:`render_heatmap`); layers and heads labelled from 1.
    """
    title = f"{scores.model_name}: {_what(scores, metric)} ({len(scores.sentences)} sentences)"
    shape = dict(layer_labels=scores.layer_labels, notes=scores.notes)
    if metric == "entropy":
        return render_heatmap(scores.score(metric), title, ax, vmin=0.0, vmax=None,
                              colorbar_label="mean entropy of attention rows (bits)", **shape)
    return render_heatmap(scores.score(metric), title, ax, **shape)


def render_pair_heatmap(scores: HeadScores, pair: PairScores, ax=None):
    """Heatmap of ``source → target`` attention for every head."""
    title = (f"{scores.model_name}: {pair.source} → {pair.target} "
             f"({pair.n_sentences} sentences, {pair.n_occurrences} pairs)")
    return render_heatmap(pair.attention, title, ax, colorbar_label="mean attention source → target",
                          layer_labels=scores.layer_labels, notes=scores.notes)


def render_syntax_heatmap(syntax, relation: str, axes=None, layer_labels: list[str] | None = None):
    """Two layers × heads heatmaps of a relation's probe accuracy: ``dep->gov`` and ``gov->dep``.

    Args:
        syntax: :class:`mlmtool.analysis.heads.syntax.SyntaxScores`.
        relation: one of ``syntax.relations``.
        axes: two matplotlib ``Axes`` to draw into; default a new figure.
        layer_labels: per layer kind (:attr:`HeadScores.layer_labels`), default None.

    Returns:
        The matplotlib ``Figure`` (accuracy on a fixed 0..1 scale; the title gives the
        fixed-offset baseline).
    """
    from matplotlib.figure import Figure
    use_in_matplotlib(axes)  # fonts for CJK and other scripts

    from ..analysis.heads.syntax import DIRECTIONS

    g = syntax.index(relation)
    acc = syntax.accuracy[g]  # [2, L, H]
    layers, heads = acc.shape[1:]
    if axes is None:
        fig = Figure(figsize=(2 * (1.2 + 0.55 * heads + (0.9 if layer_labels else 0.0)), 1.5 + 0.45 * layers),
                     dpi=100, layout="constrained")
        axes = fig.subplots(1, 2)
    base, offset = syntax.baseline(relation)
    for d, ax in enumerate(axes):
        render_heatmap(acc[d], f"{DIRECTIONS[d]}", ax, colorbar_label="accuracy", layer_labels=layer_labels)
    fig = axes[0].figure
    fig.suptitle(f"{syntax.model_name}: {relation} ({int(syntax.n[g])} arcs); baseline {base:.2f} "
                 f"(offset {offset:+d})", fontsize=10)
    return fig


def render_head_labels(scores: HeadScores, labels: np.ndarray, ax=None):
    """A layers × heads grid with each head's label written in a cell coloured by label.

    Args:
        scores: from :func:`mlmtool.score_heads`; labels: ``str [layers, heads]`` from
            :func:`mlmtool.head_labels`; ax: an optional matplotlib axes to draw into.

    Returns:
        The matplotlib ``Figure``; layers and heads labelled from 1.
    """
    from matplotlib import colormaps
    use_in_matplotlib(ax)  # fonts for CJK and other scripts

    names = list(PATTERNS) + [BROAD, MIXED]
    index = np.vectorize(names.index)(labels)
    layers, heads = labels.shape
    if ax is None:
        ax = _new_figure(1.2 + 0.62 * heads, 1.0 + 0.42 * layers, scores.layer_labels, scores.notes).add_subplot()
    fig = ax.figure
    cmap = colormaps["tab10"].resampled(len(names))
    ax.imshow(index, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, aspect="auto", alpha=0.55)
    for (l, h), label in np.ndenumerate(labels):
        text = scores.special_names.get(label, label) if label in ("cls", "sep") else label
        ax.text(h, l, text, ha="center", va="center", fontsize=6.5)
    ax.set_xticks(range(heads), [str(h + 1) for h in range(heads)])
    ax.set_yticks(range(layers), layer_ticks(layers, scores.layer_labels))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(f"{scores.model_name}: what each head does", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# Markdown


def _what(scores: HeadScores, metric: str) -> str:
    if metric in PATTERNS:
        return f"attention to {scores.title(metric)}"
    return scores.title(metric)


def _md(text: str) -> str:
    """Escape characters that break markdown tables and emphasis."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _pct(x: float) -> str:
    return "n/a" if x is None or np.isnan(x) else f"{100 * x:.0f}%"


def _example_md(ex: HeadExample | None) -> list[str]:
    if ex is None:
        return []
    links = ", ".join(f"{_md(k.source)} → {_md(k.target)} ({k.weight:.2f})" for k in ex.links)
    return [f"Example ({head_name(ex.layer, ex.head)}, score {ex.score:.2f} on this sentence): "
            f"*{_md(ex.sentence)}*  ", f"Strongest links: {links}", ""]


def _reading(scores: HeadScores, metric: str, layer: int, head: int, value: float) -> str:
    """One-line reading of the top head of ``metric``, with its numbers."""
    name = head_name(layer, head)
    specials = scores.special_names
    if metric == "entropy":
        broad = scores.top("entropy", 1)
        line = (f"{name} is the most focused head ({value:.2f} bits per word on average)")
        if broad:
            bl, bh, bv = broad[0]
            line += f"; the broadest is {head_name(bl, bh)} ({bv:.2f} bits). "
        return line + READINGS["entropy"]
    if np.isnan(value):
        return "Undefined on these sentences."
    if value < 0.25:
        return (f"No head specialises in this: the best, {name}, gives it only {_pct(value)} "
                "of a word's attention.")
    line = f"{name} gives {_pct(value)} of a word's attention to {scores.title(metric)}"
    if metric in ("next", "prev"):
        peak = float(scores.score(f"{metric}_peak")[layer - 1, head - 1])
        line += (f", and for {_pct(peak)} of words that word is the one it attends to most: "
                 if peak >= 0.5 else
                 f", but that word is the most attended one for only {_pct(peak)} of words: ")
    else:
        line += ": "
    return line + READINGS[metric].format(**specials)


def render_heads_markdown(scores: HeadScores, threshold: float = DEFAULT_THRESHOLD,
                          broad_threshold: float = DEFAULT_BROAD_THRESHOLD, top_k: int = 3,
                          images: bool = True) -> str:
    """The ``analysis.md`` report as markdown text.

    Per pattern: the ``top_k`` heads with scores, the heatmap (when ``images``), an example
    sentence with the top head's strongest links, and a one-line reading; then entropy,
    the per-head labels, and one section per ``--pair`` (ranked heads, offsets, example).

    Args:
        scores: from :func:`mlmtool.score_heads`.
        threshold, broad_threshold: see :func:`mlmtool.head_labels`.
        top_k: heads listed per pattern (default 3).
        images: link the heatmap PNGs written by :func:`save_heads_report`.

    Returns:
        Markdown text (UTF-8), layers and heads numbered from 1.
    """
    labels = scores.labels(threshold, broad_threshold)
    out = _intro_md(scores) + _summary_md(scores, labels, threshold, broad_threshold)
    if scores.syntax is not None:
        out += syntax_markdown(scores.syntax, images=images)
    for metric in PATTERNS:
        out += _pattern_md(scores, metric, top_k, images)
    out += _entropy_md(scores, top_k, images) + _labels_md(scores, labels, images)
    for i, pair in enumerate(scores.pairs, 1):
        out += _pair_md(scores, pair, i, labels, top_k=max(top_k, 5), images=images)
    return "\n".join(out).rstrip() + "\n"


def _intro_md(scores: HeadScores) -> list[str]:
    """The report's title, what was measured, and the method."""
    skipped = (f" ({scores.n_skipped} longer than the model's limit were skipped)"
               if scores.n_skipped else "")
    return [f"# What the attention heads of `{scores.model_name}` do", "",
            f"{len(scores.sentences)} sentences{skipped}, {scores.num_layers} layers × {scores.num_heads} heads. "
            "Layers and heads are counted from 1: **L2-H9** is layer 2, head 9.", "",
            f"Method: {CITATION}. Attention is taken at word level (the attending word's "
            "pieces are averaged, the attended word's pieces summed), so *next* means the next "
            "word; special tokens are units of their own. Each score is a fraction of a word's "
            "attention (0 to 1) averaged over words, then over sentences.", ""] + _notes_md(scores)


def _notes_md(scores: HeadScores) -> list[str]:
    """What this model's attention is, before its heads are compared (local layers, shared
    keys); nothing for BERT-like models."""
    if not scores.notes:
        return []
    out = ["**This model's attention.**", ""] + [f"- {_md(note)}" for note in scores.notes]
    if scores.layer_labels:
        kinds = ", ".join(f"L{l}: {_md(k)}" for l, k in enumerate(scores.layer_labels, 1))
        out.append(f"- layer kinds: {kinds}")
    return out + [""]


def _summary_md(scores: HeadScores, labels: np.ndarray, threshold: float, broad_threshold: float) -> list[str]:
    """The "Summary" section: the three best heads per pattern and how many heads get each label."""
    out = ["## Summary", "", "| pattern | best head | score | 2nd | 3rd |", "|---|---|---|---|---|"]
    for metric in PATTERNS:
        top = scores.top(metric, 3)
        cells = [f"{head_name(l, h)} | {s:.2f}" if i == 0 else f"{head_name(l, h)} ({s:.2f})"
                 for i, (l, h, s) in enumerate(top)]
        cells += ["–"] * (3 - len(cells))
        out.append(f"| {_md(scores.title(metric))} | " + " | ".join(cells) + " |")
    counts = {name: int((labels == name).sum()) for name in list(PATTERNS) + [BROAD, MIXED]}
    summary = ", ".join(f"{_md(_label_title(scores, n))}: {c}" for n, c in counts.items() if c)
    return out + ["", f"Head labels (the pattern scoring highest, if at least {threshold:.2f}; else "
                  f"*broad* if broadness ≥ {broad_threshold:.2f}; else *mixed*): {summary}.", ""]


def _pattern_md(scores: HeadScores, metric: str, top_k: int, images: bool) -> list[str]:
    """One pattern's section: a reading of its best head, the ranked heads, an example, the heatmap."""
    top = scores.top(metric, top_k)
    out = [f"## Attention to {_md(scores.title(metric))}", ""]
    if not top:
        return out + ["Undefined on these sentences (e.g. no punctuation).", ""]
    l0, h0, s0 = top[0]
    out += [_reading(scores, metric, l0, h0, s0), ""]
    if metric in ("next", "prev"):
        peak = scores.score(f"{metric}_peak")
        out += ["| rank | head | score | peaks there |", "|---|---|---|---|"]
        out += [f"| {i} | {head_name(l, h)} | {s:.3f} | {_pct(peak[l - 1, h - 1])} of words |"
                for i, (l, h, s) in enumerate(top, 1)]
    else:
        out += ["| rank | head | score |", "|---|---|---|"]
        out += [f"| {i} | {head_name(l, h)} | {s:.3f} |" for i, (l, h, s) in enumerate(top, 1)]
    out.append("")
    out += _example_md(scores.examples.get(metric))
    if images:
        out += [f"![{metric} heatmap]({heatmap_filename(metric)})", ""]
    return out


def _entropy_md(scores: HeadScores, top_k: int, images: bool) -> list[str]:
    """The entropy section: the most focused and the broadest heads side by side."""
    out = ["## Entropy: broad and focused heads", ""]
    focused = scores.top("entropy", 1, lowest=True)
    if focused:
        out += [_reading(scores, "entropy", *focused[0]), ""]
        out += ["| most focused | bits | broadest | bits |", "|---|---|---|---|"]
        for (fl, fh, fv), (bl, bh, bv) in zip(scores.top("entropy", top_k, lowest=True),
                                              scores.top("entropy", top_k)):
            out.append(f"| {head_name(fl, fh)} | {fv:.2f} | {head_name(bl, bh)} | {bv:.2f} |")
        out.append("")
        out += _example_md(scores.examples.get("entropy"))
    if images:
        out += [f"![entropy heatmap]({heatmap_filename('entropy')})", ""]
    return out


def _labels_md(scores: HeadScores, labels: np.ndarray, images: bool) -> list[str]:
    """The "Head labels" section: a layers × heads table of labels (``str [layers, heads]``)."""
    H = scores.num_heads
    out = ["## Head labels", "", "| layer | " + " | ".join(f"H{h}" for h in range(1, H + 1)) + " |",
           "|---" * (H + 1) + "|"]
    kinds = [f" · {k}" for k in scores.layer_labels] if scores.layer_labels else [""] * scores.num_layers
    for l in range(scores.num_layers):
        out.append(f"| L{l + 1}{_md(kinds[l])} | " + " | ".join(_md(_label_title(scores, x, short=True))
                                                                 for x in labels[l]) + " |")
    out.append("")
    if images:
        out += [f"![head labels]({LABELS_NAME})", ""]
    return out


def _syntax_reading(syntax, relation: str) -> str:
    """One line: the relation's best head against the fixed-offset baseline."""
    layer, head, acc, direction = syntax.best(relation)
    base, offset = syntax.baseline(relation)
    g = syntax.index(relation)
    line = (f"**{_md(relation)}**: {head_name(layer, head)} ({direction}) picks the governor for {_pct(acc)} "
            f"of {int(syntax.n[g])} arcs; the word at offset {offset:+d} is the governor for {_pct(base)}")
    gain = acc - base
    if gain > 0.1:
        return line + f", so this head follows the relation, not just position ({100 * gain:+.0f} points)."
    if gain >= 0.05:
        return line + f": a small gain ({100 * gain:+.0f} points); position explains most of it."
    if gain >= 0.005:
        return line + f": barely better ({100 * gain:+.0f} points)."
    return line + ": no head beats position here."


def syntax_markdown(syntax, images: bool = True, examples: int = 3) -> list[str]:
    """The "Syntax" section of ``analysis.md`` (lines of markdown).

    A table of relations (best head per direction, accuracy, baseline, gain over the
    baseline, as Clark et al. 2019 Table 1), a one-line reading per relation, and for the
    ``examples`` relations with the largest gain an example sentence with the arc and the
    head's pick, and the heatmap.
    """
    from ..analysis.heads.syntax import DIRECTIONS

    folded = "kept" if syntax.subtypes else "folded into the main relation (nmod:poss counts as nmod)"
    skipped = (f" ({syntax.n_skipped} longer than the model's limit were skipped)" if syntax.n_skipped else "")
    out = ["## Syntax: heads that follow the dependency tree", "",
           f"The probe of Clark et al. (2019, §4.2, Table 1) on {syntax.n_sentences} treebank sentences{skipped}, "
           f"for every relation with at least {syntax.min_count} arcs. *dep->gov*: the dependent's most-attended "
           "other word is its governor; *gov->dep*: the word that attends most to the dependent is its governor "
           "(the word itself and special tokens never count; the root arc is left out). Accuracy = share of arcs "
           "predicted right. Baseline: always the word at the relation's most common relative position (offset "
           f"in words). Relation subtypes {folded}.", "",
           "| relation | arcs | dep->gov | acc. | gov->dep | acc. | baseline (offset) | gain |",
           "|---|---|---|---|---|---|---|---|"]
    gains = {}
    for g, relation in enumerate(syntax.relations):
        cells = []
        for direction in DIRECTIONS:
            layer, head, acc, _ = syntax.best(relation, direction)
            cells += [head_name(layer, head), f"{acc:.2f}"]
        base, offset = syntax.baseline(relation)
        gains[relation] = syntax.best(relation)[2] - base
        out.append(f"| {_md(relation)} | {int(syntax.n[g])} | " + " | ".join(cells) +
                   f" | {base:.2f} ({offset:+d}) | {gains[relation]:+.2f} |")
    out += ["", "Reading, relation by relation:", ""]
    out += [f"- {_syntax_reading(syntax, r)}" for r in syntax.relations]
    out.append("")
    top = sorted(syntax.relations, key=lambda r: -gains[r])[:examples]
    for relation in top:
        layer, head, acc, direction = syntax.best(relation)
        out += [f"### {_md(relation)}: {head_name(layer, head)} ({direction}, {acc:.2f})", ""]
        ex = syntax.examples.get((relation, direction))
        if ex is not None:
            arcs = "; ".join(f"{_md(a.dependent)} → {_md(a.governor)}: head picks {_md(a.predicted)} "
                             f"({a.weight:.2f}) {'✓' if a.correct else '✗'}" for a in ex.arcs)
            out += [f"Example: *{_md(ex.sentence)}*  ", f"Arcs (dependent → governor) and the head's pick: {arcs}", ""]
        if images:
            out += [f"![{_md(relation)} heatmap]({syntax_filename(relation)})", ""]
    if images:
        rest = [r for r in syntax.relations if r not in top]
        if rest:
            out += ["Heatmaps of the other relations: " +
                    ", ".join(f"[{_md(r)}]({syntax_filename(r)})" for r in rest) + ".", ""]
    return out


def _label_title(scores: HeadScores, label: str, short: bool = False) -> str:
    if label in ("cls", "sep"):
        return scores.special_names[label]
    if short:
        return label
    return {"prev": "previous word", "next": "next word", "self": "itself"}.get(label, label)


def _pair_md(scores: HeadScores, pair: PairScores, index: int, labels: np.ndarray,
             top_k: int, images: bool) -> list[str]:
    out = [f"## Pair {index}: does *{_md(pair.source)}* attend to *{_md(pair.target)}*?", ""]
    if pair.n_sentences == 0:
        return out + ["The two words never occur in the same sentence.", ""]
    common = sorted(pair.offsets.items(), key=lambda kv: -kv[1])
    offs = ", ".join(f"{k:+d} ({v})" for k, v in common[:5])
    out += [f"{pair.n_sentences} sentences, {pair.n_occurrences} source/target pairs. Position of "
            f"the target relative to the source, in words (count): {offs}.", ""]
    top = pair.top(top_k)
    out += ["| rank | head | mean attention | target is the most attended word | head label |",
            "|---|---|---|---|---|"]
    out += [f"| {i} | {head_name(l, h)} | {a:.3f} | {_pct(r)} | "
            f"{_md(_label_title(scores, str(labels[l - 1, h - 1]), short=True))} |"
            for i, (l, h, a, r) in enumerate(top, 1)]
    out.append("")
    l0, h0, a0, r0 = top[0]
    label = str(labels[l0 - 1, h0 - 1])
    line = (f"Reading: {head_name(l0, h0)} ranks first, giving {_pct(a0)} of the source word's "
            f"attention to the target on average (the target is its top word in {_pct(r0)} of cases).")
    adjacent = sum(v for k, v in pair.offsets.items() if abs(k) == 1) / max(pair.n_occurrences, 1)
    if label in ("next", "prev") and adjacent >= 0.5:
        line += (f" Caution: it is labelled *{label}* (a {_label_title(scores, label)} head) and "
                 f"{_pct(adjacent)} of "
                 "these pairs are adjacent, so position may explain it better than the relation; "
                 "add sentences where the words are further apart.")
    elif pair.n_sentences < 5:
        line += f" Only {pair.n_sentences} sentences: treat this as a hint, not a finding."
    out += [line, ""]
    out += _example_md(pair.example)
    if images:
        out += [f"![pair {index} heatmap]({pair_filename(index, pair.source, pair.target)})", ""]
    return out


# --------------------------------------------------------------------------------------------
# Saving


def save_heads_report(scores: HeadScores, out_dir: str | Path, threshold: float = DEFAULT_THRESHOLD,
                      broad_threshold: float = DEFAULT_BROAD_THRESHOLD, top_k: int = 3,
                      dpi: int = 110) -> list[Path]:
    """Write ``analysis.md``, ``heads.json``, ``labels.png`` and one heatmap per pattern/pair/relation.

    The directory must exist (the CLI checks it with ``prepare_output_dir`` first); files of
    the same names are replaced.

    Returns:
        The paths written, ``analysis.md`` first.
    """
    out = Path(out_dir)
    paths = [out / REPORT_NAME, out / JSON_NAME]
    paths[0].write_text(render_heads_markdown(scores, threshold, broad_threshold, top_k), encoding="utf-8")
    payload = scores.to_dict(threshold, broad_threshold)
    paths[1].write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    figures = [(LABELS_NAME, render_head_labels(scores, scores.labels(threshold, broad_threshold)))]
    figures += [(heatmap_filename(m), render_metric_heatmap(scores, m)) for m in HEATMAP_METRICS]
    figures += [(pair_filename(i, p.source, p.target), render_pair_heatmap(scores, p))
                for i, p in enumerate(scores.pairs, 1)]
    if scores.syntax is not None:
        figures += [(syntax_filename(r), render_syntax_heatmap(scores.syntax, r, layer_labels=scores.layer_labels))
                    for r in scores.syntax.relations]
    for name, fig in figures:
        fig.savefig(out / name, dpi=dpi)
        paths.append(out / name)
    return paths
