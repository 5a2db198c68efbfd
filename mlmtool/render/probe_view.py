"""Pictures and tables of a :class:`~mlmtool.analysis.probe.ProbeResult`: a line plot per task
across layers (control dashed), a rich table, the ``probe.md`` text and a small HTML page.
Renderers take the result, never a model, and return values (callers ``.save()``)."""

from __future__ import annotations

import base64
import io

from ..analysis.probe.result import ProbeResult, main_metric
from ._document import HTML, template

#: Column label and metrics shown per task (the first is ranked; "best" marks it).
_SHOWN = {"upos": ("accuracy", "selectivity"), "xpos": ("accuracy", "selectivity"),
          "deprel": ("accuracy", "selectivity"), "distance": ("uuas", "dspr"), "depth": ("root_accuracy", "nspr")}
_NAMES = {"accuracy": "acc", "selectivity": "sel", "control_accuracy": "ctrl", "uuas": "UUAS", "dspr": "DSpr",
          "root_accuracy": "root", "nspr": "NSpr"}


def _fmt(v) -> str:
    return "–" if v is None or v != v else f"{v:.3f}"


def columns(result: ProbeResult) -> list[tuple[str, str]]:
    """``[(task, metric)]`` shown, in table order (selectivity only with control tasks)."""
    return [(t, m) for t in result.tasks for m in _SHOWN[t] if m != "selectivity" or result.control]


def headers(result: ProbeResult) -> list[str]:
    """Column titles of :func:`columns`: ``"upos acc"``, ``"distance UUAS"``, ..."""
    return [f"{t} {_NAMES[m]}" for t, m in columns(result)]


def table_rows(result: ProbeResult) -> list[tuple[str, list[tuple[str, bool]]]]:
    """``[(layer label, [(cell text, best layer of its task's main metric)])]``, then the
    majority baseline row (label tasks' accuracy)."""
    best = {t: result.best(t) for t in result.tasks}
    cols = columns(result)
    rows = [(str(layer), [(_fmt(result.scores[k][t].get(m)), best[t] == layer and m == main_metric(t))
                          for t, m in cols]) for k, layer in enumerate(result.layers)]
    if result.baselines:
        rows.append(("majority", [(_fmt(result.baselines[t]["majority"]) if t in result.baselines
                                   and m == "accuracy" else "", False) for t, m in cols]))
    return rows


def render_probe_table(result: ProbeResult):
    """A ``rich.table.Table``: layers as rows, task metrics as columns, each task's best layer
    (by its main metric) in bold with ``*``."""
    from rich.table import Table

    table = Table(title=f"Probes of {result.model_name} (layer 0 = embeddings; * = best layer)")
    table.add_column("layer", justify="right")
    for h in headers(result):
        table.add_column(h, justify="right")
    for label, cells in table_rows(result):
        table.add_row(label, *[f"[bold]{c} *[/bold]" if best else c for c, best in cells])
    return table


def render_probe_markdown(result: ProbeResult) -> str:
    """``probe.md``: the readings as a Markdown table plus the counts and the notes."""
    c = result.counts
    lines = [f"# Probes of {result.model_name}", "",
             f"Trained on {c.get('train_sentences', '–')} sentences ({c.get('train_words', '–')} words), "
             f"tested on {c.get('test_sentences')} sentences ({c.get('test_words')} words); left out as too "
             f"long: {c.get('train_skipped', 0)} train, {c.get('test_skipped', 0)} test. Layer 0 is the "
             "embedding output (the no-context baseline); best layer per task marked *.", "",
             "| layer | " + " | ".join(headers(result)) + " |", "|---" * (len(columns(result)) + 1) + "|"]
    for label, cells in table_rows(result):
        lines.append(f"| {label} | " + " | ".join(f"**{t}** *" if b else t for t, b in cells) + " |")
    for task, counts in result.unseen_labels.items():
        shown = ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
        lines += ["", f"Skipped {sum(counts.values())} test words of {task} whose label never occurs in "
                  f"training: {shown}."]
    return "\n".join(lines) + "\n"


def render_probe(result: ProbeResult, ax=None):
    """Line plots of each task's metrics across layers; control accuracy dashed.

    Args:
        result: from :func:`mlmtool.probe`.
        ax: a matplotlib ``Axes`` to draw every line on; None = a new ``Figure`` (no pyplot)
            with one panel per task.

    Returns:
        The ``matplotlib.figure.Figure``; save it with ``fig.savefig("probe.png")``.
    """
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(3.2 * len(result.tasks), 3.0), layout="constrained")
        axes = list(fig.subplots(1, len(result.tasks), squeeze=False)[0])
    else:
        fig, axes = ax.figure, [ax] * len(result.tasks)
    for a, task in zip(axes, result.tasks):
        metrics = _SHOWN[task][:1] + (("control_accuracy",) if result.control and task in _SHOWN
                                      and _SHOWN[task][0] == "accuracy" else _SHOWN[task][1:])
        for m in metrics:
            ys = [row[task].get(m) for row in result.scores]
            ys = [float("nan") if y is None else y for y in ys]
            a.plot(result.layers, ys, marker="o", linestyle="--" if m == "control_accuracy" else "-",
                   label=f"{task} {_NAMES[m]}")
        a.set_xlabel("layer (0 = embeddings)")
        if ax is None:
            a.set_title(task)
        a.set_xticks(result.layers)
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    return fig


def render_probe_html(result: ProbeResult) -> HTML:
    """A self-contained page (no script, no request): the table and the plot as a ``data:`` PNG."""
    buf = io.BytesIO()
    render_probe(result).savefig(buf, format="png", dpi=110)
    doc = template("probe.html").render(result=result, headers=headers(result), rows=table_rows(result),
                                        png=base64.b64encode(buf.getvalue()).decode("ascii"))
    return HTML(doc, title=f"Probes of {result.model_name}")


__all__ = ["columns", "headers", "render_probe", "render_probe_html", "render_probe_markdown", "render_probe_table", "table_rows"]
