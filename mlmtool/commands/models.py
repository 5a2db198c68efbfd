"""``mlmtool models``: the registry, and which entries work offline right now."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--info", "info", default=None, metavar="NAME", help="Show one entry's card.")
def models(as_json, info):
    """List the models that --lang and --model names stand for.

    "shipped" and "cached" models work offline now; "download" ones need the model hub.
    Any hub id or local directory also works with --model.
    """
    from ..errors import MlmtoolError
    from ..models import availability
    from ..registry import DATA_DIR, REGISTRY

    if info is not None:
        entry = REGISTRY.get(info)
        if entry is None:
            raise MlmtoolError(f"no registry entry '{info}'; see `mlmtool models`")
        card_file = DATA_DIR / entry.delta / "README.md" if entry.delta else None
        rows = {"name": entry.name, "source": entry.source, "lang": entry.lang,
                "masked-LM head": "yes" if entry.has_mlm_head else "no",
                "architecture": entry.architecture, "layers x heads": f"{entry.layers} x {entry.heads}",
                "status": availability(entry), "about": entry.description}
        for k, v in rows.items():
            click.echo(f"{k:>15}: {v}")
        if card_file is not None and card_file.is_file():
            click.echo("")
            click.echo(card_file.read_text(encoding="utf-8").rstrip())
        return
    rows = [{"name": e.name, "lang": e.lang, "status": availability(e), "fill_mask": e.has_mlm_head,
             "architecture": e.architecture, "layers": e.layers, "heads": e.heads,
             "works": "every command" if e.has_mlm_head else "attention, heads, embed, compare",
             "source": e.source, "description": e.description} for e in REGISTRY.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mlmtool models", title_justify="left")
    for col in ("name", "lang", "status", "architecture", "layers x heads", "works", "source", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        usable = r["status"] in ("shipped", "cached")
        shape = f"{r['layers']} x {r['heads']}" if r["layers"] and r["heads"] else "?"
        table.add_row(r["name"], r["lang"], ("[green]" if usable else "[yellow]") + r["status"],
                      r["architecture"], shape, r["works"], r["source"], r["description"])
    Console(soft_wrap=False).print(table)
