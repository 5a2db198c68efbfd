"""``mlmtool serve``: the toolkit live in the browser, on a local web server."""

from __future__ import annotations

import re

import click

from ..registry import LANGS
from ._common import load_model

_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


@click.command()
@click.option("-m", "--model", "models", envvar="MLMTOOL_MODEL", multiple=True, metavar="NAME|DIR|HUB_ID",
              help="A model to load at start (repeat for several; the first is the default). "
                   "[default: the registry's model for --lang]")
@click.option("-l", "--lang", envvar="MLMTOOL_LANG", default="en", show_default=True, type=click.Choice(LANGS),
              help="Language; picks the registry's model when --model is not given.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address makes the server reachable "
                   "from other machines (it has no authentication).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 = any free port; the start line says which).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option("--cors", "cors", multiple=True, metavar="ORIGIN",
              help="Let pages from ORIGIN (e.g. http://localhost:3000) call the API; repeatable. "
                   "Without it no CORS header is sent.")
@click.option("--heads", "heads_files", multiple=True, metavar="[MODEL=]FILE",
              help="heads.json from `mlmtool heads`: label the heads on the page and serve it at "
                   "/api/heads. MODEL= says which loaded model it is for (else its \"model\" field, "
                   "or the only model).")
@click.option("--index", "index_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="A corpus index from `mlmtool index`: adds the Search tab and /api/search. Its model "
                   "must be one of the loaded ones.")
@click.option("--probe", "probe_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="A folder written by `mlmtool probe -o DIR`: adds the Probe tab and /api/probe.")
def serve(models, lang, host, port, open_browser, cors, heads_files, index_dir, probe_dir):
    """Serve the page and the JSON API for the models loaded at start.

    The page (http://127.0.0.1:8000/ by default) has one tab per capability: Fill &
    attention (type a sentence, press Enter: the predictions for each [MASK], every
    attention head, the large head view and line view), Layers (layer-wise predictions,
    rollout and flow), Score (sentences, minimal pairs typed or from a TSV file), Compare,
    Embed, Heads, Explain (SHAP), and Probe and Search with --probe and --index. The URL
    (?tab=...&text=...&model=...) shares a view. The JSON API (POST /api/predict,
    /api/attention, /api/view, /api/layers, /api/summary, /api/embed, /api/score,
    /api/compare, /api/heads, /api/explain, /api/search, /api/probe; GET /api/models,
    /api/heads, /api/probe) answers what the commands print with --json; /docs describes
    it. Nothing is loaded from the internet. Only this machine can connect unless --host
    says otherwise. Ctrl-C stops the server.

    \b
    Examples:
      mlmtool serve
      mlmtool serve -m en-mini -m minilm --open
      mlmtool serve -m en-mini --heads out/heads.json --port 8080
      mlmtool serve -m minilm --index bank-index --probe probe-out
      curl -s localhost:8000/api/predict -H 'Content-Type: application/json' \\
           -d '{"text": "The [MASK] sat on the mat."}'
    """
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise click.UsageError(f"serve needs {' and '.join(missing)}: pip install 'mlmtool[serve]'")
    for origin in cors:
        if origin != "*" and not _ORIGIN.match(origin):
            raise click.BadParameter(f"'{origin}' is not an origin (scheme://host[:port], no path)",
                                     param_hint="'--cors'")
    heads_raw = [_read_heads(spec) for spec in heads_files]
    _check_folders(index_dir, probe_dir)
    loopback = _is_loopback(host)
    if not loopback:
        click.echo(f"Warning: --host {host} makes the server reachable from other machines, and it has "
                   "no authentication: anyone who can reach it can use it.", err=True)
    sock = _listen(host, port)
    from ..server.worker import prepare_threads

    prepare_threads()  # before torch is imported: MKL at full speed in the server's threads
    try:
        loaded = {}
        for spec in models or (None,):
            lm = load_model(spec, lang)
            loaded[_unique(_display_name(spec, lm), loaded)] = lm
        heads = _assign_heads(heads_raw, loaded)

        from ..server.app import LOOPBACK_HOSTS, create_app

        app = create_app(loaded, heads=heads, cors=list(cors) or None,
                         allowed_hosts=LOOPBACK_HOSTS if loopback else None, index=index_dir, probe=probe_dir)
        _warm_up(loaded)
        _run(app, sock, host, ", ".join(loaded), open_browser)
    finally:
        sock.close()


def _run(app, sock, host: str, names: str, open_browser: bool) -> None:
    """Serve ``app`` on the bound socket until Ctrl-C (graceful: the requests that are running
    finish, at most 3 s; the waiting ones are refused), then end the process."""
    import os
    import sys
    import threading
    import time

    import uvicorn

    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # Ctrl-C: requests waiting for a model are refused at once (503), the ones running
            # finish, and the SHAP worker stops at its next model call.
            for gate in app.state.gates.values():
                gate.close()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=3)
    server = Server(config)
    click.echo(f"mlmtool serve: {url} ({names}; Ctrl-C stops)")
    if open_browser:
        def launch():
            for _ in range(100):
                if server.started:
                    break
                time.sleep(0.05)
            click.launch(url)

        threading.Thread(target=launch, daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the signal it handled once it has stopped
        pass
    finally:
        app.state.jobs.close()
    click.echo("mlmtool serve: stopped", err=True)
    # Every request has been answered and the socket is closed; nothing is left to save. End
    # the process now: the interpreter's teardown of torch and transformers takes 1.5-6 s on
    # a small machine, and a SHAP job in progress (a daemon thread) is abandoned either way.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _warm_up(loaded: dict) -> None:
    """Import what the requests use and run each model once, before the start line.

    So the first request does not pay for them, and never waits on Python's import lock
    behind the SHAP worker's first (slow) import of shap.
    """
    import importlib

    from ..errors import MlmtoolError

    for module in ("attention", "embed", "predict", "score", "compare", "layerwise", "rollout"):
        importlib.import_module(f"mlmtool.analysis.{module}")
    importlib.import_module("mlmtool.render.html_view")
    from ..analysis.attention import attention
    from ..analysis.predict import predict

    for lm in loaded.values():
        try:
            attention(lm, "a")
            if lm.has_mlm_head:
                predict(lm, f"a {lm.mask_token}")
        except MlmtoolError:  # e.g. a tokenizer without the word "a": nothing to warm
            pass


def _check_folders(index_dir: str | None, probe_dir: str | None) -> None:
    """Check ``--index`` and ``--probe`` before any model loads (the index's model is checked
    once the models are loaded, by :func:`~mlmtool.server.features.load_features`).

    Raises:
        MlmtoolError: not an index (or a partial one); a probe folder without probe.json.
    """
    from pathlib import Path

    if index_dir is not None:
        from ..analysis.corpus.store import read_info

        read_info(index_dir)
    if probe_dir is not None:
        from ..server.features import PROBE_FILE

        if not (Path(probe_dir) / PROBE_FILE).is_file():
            raise click.BadParameter(f"'{probe_dir}' has no {PROBE_FILE} (write one with mlmtool probe ... -o DIR)",
                                     param_hint="'--probe'")


def _is_loopback(host: str) -> bool:
    """True for 127.x.x.x, ::1 and localhost."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int):
    """A listening TCP socket on ``host:port`` (bound before the models load, so a busy port
    fails at once).

    Raises:
        click.UsageError: the address cannot be used.
    """
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
                               "--port (0 = any free port)") from None
    sock.set_inheritable(True)
    return sock


def _display_name(spec: str | None, lm) -> str:
    """The name requests use: the registry name, or a model directory's last part."""
    from pathlib import Path

    if lm.entry is not None or spec is None:
        return lm.name
    path = Path(spec).expanduser()
    return path.resolve().name if path.exists() else lm.name


def _unique(name: str, taken: dict) -> str:
    n, out = 2, name
    while out in taken:
        out, n = f"{name}-{n}", n + 1
    return out


def _read_heads(spec: str) -> tuple[str | None, str, object]:
    """``(model or None, file, parsed JSON)`` from ``[MODEL=]FILE``.

    Raises:
        click.BadParameter: the file is missing or not JSON.
    """
    import json
    from pathlib import Path

    model, path = None, spec
    if "=" in spec and not Path(spec).is_file():
        model, path = spec.split("=", 1)
    try:
        return model, path, json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.BadParameter(f"no such file: '{path}'", param_hint="'--heads'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"'{path}' is not a JSON file ({str(exc).splitlines()[0]})",
                                 param_hint="'--heads'") from None


def _assign_heads(raw: list, loaded: dict) -> dict:
    """``{model name: heads JSON}``: by ``MODEL=``, else the file's ``model`` field, else the only model."""
    out = {}
    by_lm_name = {lm.name: name for name, lm in loaded.items()}
    for model, path, obj in raw:
        field = obj.get("model") if isinstance(obj, dict) else None
        if model is not None:
            name = model
        elif field in loaded or field in by_lm_name:
            name = field if field in loaded else by_lm_name[field]
        elif len(loaded) == 1:
            name = next(iter(loaded))
        else:
            raise click.BadParameter(f"say which model '{path}' is for: --heads MODEL={path} "
                                     f"(loaded: {', '.join(loaded)})", param_hint="'--heads'")
        if name not in loaded:
            raise click.BadParameter(f"model '{name}' is not loaded (loaded: {', '.join(loaded)})",
                                     param_hint="'--heads'")
        out[name] = obj
    return out
