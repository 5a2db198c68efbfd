"""The pages of ``mlmtool serve``: the app page, its scripts, and the API docs page.

The app page is the static view delivered a second way: it holds the view's own template
(``mlmtool/templates/view.html``, rendered here without data and without its inline
script) and loads the view's own scripts from ``/static/`` (``decode.js``, the payload
decoder every page shares, then ``view.js``); ``app.js`` (the app-specific code: the text
box, the model switcher, the tabs, URL state, fetching) fetches ``POST /api/view`` and
hands the data to ``mlmtoolView``, exactly as the static page hands it the data it embeds.
The Compare tab does the same with the comparison page (``compare.html``, ``compare.js``,
``POST /api/compare/view``); ``tabs.js`` draws the other tabs (layers, score, embed, heads,
explain, probe, search) from the API's JSON. Nothing is loaded from anywhere but the server.

``/docs`` is written here from the app's OpenAPI schema (``/openapi.json``): FastAPI's
default ``/docs`` loads Swagger UI from a CDN, which fails offline and would let a third
party run script on the page.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

#: Files ``GET /static/{name}`` serves: name -> (package file in mlmtool/templates, media type).
STATIC = {"decode.js": ("decode.js", "text/javascript; charset=utf-8"),
          "view.js": ("view.js", "text/javascript; charset=utf-8"),
          "compare.js": ("compare.js", "text/javascript; charset=utf-8"),
          "tabs.js": ("tabs.js", "text/javascript; charset=utf-8"),
          "app.js": ("app.js", "text/javascript; charset=utf-8")}

#: The id of the view's root element on the app page.
ROOT_ID = "mlmv-app"
#: The id of the comparison page's root element (the Compare tab).
COMPARE_ROOT_ID = "mlmc-app"


def _template(name: str) -> str:
    return (resources.files("mlmtool") / "templates" / name).read_text(encoding="utf-8")


def static_asset(name: str) -> tuple[str, str] | None:
    """``(text, media type)`` of a file in :data:`STATIC`, or None for any other name."""
    entry = STATIC.get(name)
    if entry is None:
        return None
    return _cached(entry[0]), entry[1]


@lru_cache(maxsize=None)
def _cached(name: str) -> str:
    return _template(name)


def view_shell(title: str = "mlmtool") -> str:
    """The static view's fragment (``view.html`` with ``view.css``) holding no data yet.

    Its JSON block says ``null`` and its inline ``<script>`` is left out (the page's
    Content-Security-Policy allows only the server's own script files); ``app.js`` fills
    the JSON block and calls ``mlmtoolView``.

    Raises:
        RuntimeError: ``view.html`` no longer has the parts this relies on.
    """
    import jinja2

    from ..render.html_view import _assets

    template, css, _ = _assets()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    fragment = env.from_string(template).render(root_id=ROOT_ID, title=title, css=css, data="null", script="")
    if fragment.count("<script></script>") != 1 or 'class="mlmv-data">null</script>' not in fragment:
        raise RuntimeError("view.html changed: expected one inline <script> and the mlmv-data block")
    return fragment.replace("<script></script>", "")


def compare_shell() -> str:
    """The comparison page's fragment (``compare.html`` with ``compare.css``) holding no data,
    for the Compare tab: as :func:`view_shell`, its JSON block says ``null``, its inline
    ``<script>`` is left out, and ``tabs.js`` fills the block and calls ``mlmtoolCompare``.

    Raises:
        RuntimeError: ``compare.html`` no longer has the parts this relies on.
    """
    import jinja2

    from ..render._document import page_assets

    template, css, _ = page_assets("compare")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    fragment = env.from_string(template).render(root_id=COMPARE_ROOT_ID, title="", css=css, data="null",
                                                script="")
    if fragment.count("<script></script>") != 1 or 'class="mlmc-data">null</script>' not in fragment:
        raise RuntimeError("compare.html changed: expected one inline <script> and the mlmc-data block")
    return fragment.replace("<script></script>", "")


def page_html(models: dict[str, Any], default: str, limits, *, heads: Any = (), features: Any = None) -> str:
    """The app page (``GET /``): the text box, the model switcher, the tabs and the view's shell.

    Args:
        models: ``{name: LoadedModel}``; default: the default model's name.
        limits: the server's :class:`~mlmtool.server.app.Limits` (the text box's maxlength).
        heads: names of the models a heads.json was given for (the Heads tab shows it).
        features: the app's :class:`~mlmtool.server.features.Features` (the Search and Probe
            tabs appear only with them); None = neither.
    """
    import jinja2

    from ..render.html_view import json_for_script

    from ..analysis.embed import METHODS
    from ..analysis.score import VARIANTS
    from ..defaults import MAX_EVALS, THRESHOLD, TOP_K

    extra = features.config() if features is not None else {"search": None, "probe": None}
    config = {"default": default, "root": ROOT_ID, "compare_root": COMPARE_ROOT_ID,
              "max_text_chars": limits.max_text_chars, "max_top_k": limits.max_top_k,
              "max_sentences": limits.max_sentences, "max_evals": limits.max_evals,
              "defaults": {"top_k": TOP_K, "max_evals": MAX_EVALS, "threshold": THRESHOLD},
              "variants": list(VARIANTS), "methods": list(METHODS),
              "models": [{"name": n, "layers": lm.num_layers, "heads": lm.num_heads,
                          "has_mlm_head": lm.has_mlm_head, "mask_token": lm.mask_token,
                          "vocab": len(lm.tokenizer), "head_labels": n in heads} for n, lm in models.items()],
              **extra}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_template("app.html")).render(
        view=view_shell(), compare=compare_shell(), config=json_for_script(config),
        max_text_chars=limits.max_text_chars, max_top_k=limits.max_top_k, search=extra["search"],
        probe=extra["probe"])


_DOCS = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ info.title }}: API</title>
<link rel="icon" href="data:,">
<style>
body { font: 15px/1.5 system-ui, "DejaVu Sans", sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
code, pre { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; }
pre { background: #f6f7fb; padding: .6rem .8rem; overflow-x: auto; }
.op { border-top: 1px solid #ddd; padding-top: .6rem; margin-top: 1.2rem; }
.verb { display: inline-block; min-width: 3.5rem; font-weight: bold; color: #2a6fdb; }
table { border-collapse: collapse; } td, th { text-align: left; padding: 2px 10px 2px 0; vertical-align: top; }
th { font-weight: 600; } .muted { color: #666; }
</style></head><body>
<h1>{{ info.title }} <small class="muted">{{ info.version }}</small></h1>
<p>{{ info.description }}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI {{ openapi }}). The page itself: <a href="/">/</a>.</p>
<p>Example: <code>curl -s localhost:8000/api/predict -H 'Content-Type: application/json' -d '{"text": "The [MASK] sat on the mat."}'</code></p>
{% for op in ops %}
<section class="op" id="{{ op.id }}">
<h2><span class="verb">{{ op.method }}</span> <code>{{ op.path }}</code></h2>
<p>{{ op.summary }}</p>
{% if op.params %}<table><tr><th>query</th><th>type</th><th>default</th><th></th></tr>
{% for p in op.params %}<tr><td><code>{{ p.name }}</code></td><td>{{ p.type }}</td><td>{{ p.default }}</td><td>{{ p.description }}</td></tr>{% endfor %}
</table>{% endif %}
{% if op.body %}<p>JSON body: <b>{{ op.body.name }}</b> {{ op.body.description }}</p>
<table><tr><th>field</th><th>type</th><th>default</th><th></th></tr>
{% for f in op.body.fields %}<tr><td><code>{{ f.name }}</code>{% if f.required %} <b>*</b>{% endif %}</td><td>{{ f.type }}</td><td>{{ f.default }}</td><td>{{ f.description }}</td></tr>{% endfor %}
</table>{% if op.body.example %}<pre>{{ op.body.example }}</pre>{% endif %}{% endif %}
<p class="muted">Answers: {{ op.responses }}</p>
</section>
{% endfor %}
</body></html>
"""


def _type(schema: dict) -> str:
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def docs_html(openapi: dict) -> str:
    """The API documentation page (``GET /docs``) written from the OpenAPI schema, no script."""
    import json

    import jinja2

    schemas = openapi.get("components", {}).get("schemas", {})
    ops = []
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            body = None
            ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref"))
            if ref:
                name = ref.rsplit("/", 1)[-1]
                schema = schemas.get(name, {})
                required = set(schema.get("required", []))
                fields, example = [], {}
                for fname, f in schema.get("properties", {}).items():
                    fields.append({"name": fname, "type": _type(f), "required": fname in required,
                                   "default": "" if "default" not in f else json.dumps(f["default"]),
                                   "description": f.get("description", "")})
                    if f.get("examples"):
                        example[fname] = f["examples"][0]
                body = {"name": name, "description": schema.get("description", ""), "fields": fields,
                        "example": json.dumps(example, ensure_ascii=False) if example else ""}
            params = [{"name": p["name"], "type": _type(p.get("schema", {})),
                       "default": json.dumps(p.get("schema", {}).get("default")) if "default" in p.get("schema", {}) else "",
                       "description": p.get("description", "")} for p in op.get("parameters", [])]
            ops.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                        "id": op.get("operationId", ""), "params": params, "body": body,
                        "responses": ", ".join(sorted(op.get("responses", {})))})
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_DOCS).render(info=openapi.get("info", {}), openapi=openapi.get("openapi", ""),
                                         ops=ops)
