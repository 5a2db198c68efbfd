"""Pictures of a corpus search (:class:`mlmtool.analysis.corpus.query.SearchResult`): a rich
keyword-in-context table with a summary, and a small self-contained HTML page.

Renderers take the result and return a value (a rich renderable, an :class:`HTML`); they
never see a model or write files.
"""

from __future__ import annotations

from ._document import HTML, scoped_fragment, template

#: Characters of context shown on each side of a hit in the table.
CONTEXT_CHARS = 40


def _clip(text: str, width: int, left: bool) -> str:
    """``text`` cut to ``width`` characters from the side away from the hit, with ``…``."""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if left else text[:width - 1] + "…"


def context_width(result, columns: int) -> int:
    """Characters of context per side that let :func:`render_search_text`'s table fit in
    ``columns`` terminal columns: :data:`CONTEXT_CHARS` at most, 8 at least.

    The other columns keep their full width (word, cosine ``0.000``, sentence number, UPOS),
    and a rich table with ``n`` columns spends ``3 n + 1`` on borders and padding.
    """
    tagged = any(h.upos for h in result.hits)
    cells = [max([4, *(len(h.word) for h in result.hits)]), len("cosine"), len("sentence")]
    if tagged:
        cells.append(max([4, *(len(h.upos or "") for h in result.hits)]))
    fixed = sum(cells) + 3 * (len(cells) + 2) + 1
    return max(8, min(CONTEXT_CHARS, (columns - fixed) // 2))


def render_search_text(result, width: int = CONTEXT_CHARS):
    """A rich ``Group``: the keyword-in-context table (left, word, right, cosine, sentence)
    and a line each for the most frequent hit words and POS tags.

    Args:
        result: a :class:`~mlmtool.analysis.corpus.query.SearchResult`.
        width: characters of context on each side (default :data:`CONTEXT_CHARS`).

    Returns:
        ``rich.console.Group`` (print it with a ``rich.console.Console``).
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"\"{result.word}\" in \"{result.query}\": layer {result.layer}, {result.model}",
                  title_justify="left")
    table.add_column("left", justify="right", no_wrap=True)
    table.add_column("word", style="bold", no_wrap=True)
    table.add_column("right", no_wrap=True)
    table.add_column("cosine", justify="right", no_wrap=True)
    table.add_column("sentence", justify="right", no_wrap=True)
    tagged = any(h.upos for h in result.hits)
    if tagged:
        table.add_column("UPOS", no_wrap=True)
    for h in result.hits:
        row = [_clip(h.left, width, True), h.word, _clip(h.right, width, False), f"{h.score:.3f}", str(h.sentence)]
        table.add_row(*row, *([h.upos or ""] if tagged else []))
    summary = result.summary()
    lines = [Text(f"{len(result.hits)} hits in {summary['sentences']} sentences"
                  + ("" if result.exact else " (approximate: inverted lists)"))]
    if summary["words"]:
        lines.append(Text("words: " + ", ".join(f"{w} {n}" for w, n in list(summary["words"].items())[:10])))
    if summary["pos"]:
        lines.append(Text("POS: " + ", ".join(f"{p} {n}" for p, n in summary["pos"].items())))
    return Group(table, *lines)


def render_search_html(result) -> HTML:
    """One offline HTML page: the query, the keyword-in-context table, the summary.

    No script and no request (Content-Security-Policy ``default-src 'none'``); the
    template is ``mlmtool/templates/search.html.j2`` (Jinja2, autoescaped).

    Returns:
        :class:`~mlmtool.render._document.HTML`.
    """
    title = f"mlmtool search: {result.word} (layer {result.layer})"
    page = template("search.html.j2").render(title=title, result=result, summary=result.summary(),
                                             tagged=any(h.upos for h in result.hits))
    return HTML(page, scoped_fragment(page, "mlmtool-search"), title=title)
