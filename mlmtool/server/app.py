"""The web app of ``mlmtool serve``: a JSON API and one page, on the same library as the CLI.

:func:`create_app` takes models that are already loaded (``{name: LoadedModel}``) and
returns a FastAPI application; ``mlmtool serve`` runs it under uvicorn, tests drive it with
FastAPI's ``TestClient``. Every answer is computed by the library functions the command
line uses, and serialised by the same ``to_dict()``:

* ``GET /``: the page (:mod:`mlmtool.server.page`): the static view's own template and
  JavaScript, fed from ``POST /api/view``;
* ``GET /api/models``: the loaded models and the server's limits;
* ``POST /api/predict`` ``{text, model?, top_k?, max_pieces?, beam?, independent?}``: exactly
  ``mlmtool predict --json`` (:func:`~mlmtool.analysis.predict.predict_json`);
* ``POST /api/attention`` ``{text, model?, precision?}``: tokens and the attention of every
  head, quantised as in the static view (:func:`~mlmtool.render.html_view.encode_attention`);
* ``POST /api/view`` ``{text, model?, top_k?, ...}``: the data the view draws
  (:func:`~mlmtool.render.html_view.view_payload`), computed as ``mlmtool view`` does;
* ``POST /api/embed`` ``{texts, model?, layer?, method?, ...}``: ``mlmtool embed --json``;
* ``POST /api/score`` ``{text | texts | pairs, model?, variant?}``: ``mlmtool score --json``;
* ``POST /api/compare`` ``{texts, models: [A, B] | model, top_k?}``: ``mlmtool compare --json``;
* ``POST /api/explain`` ``{text, model?, target?, mask?, max_evals?, seed?}``: 202 and a job;
  ``GET /api/explain/{id}`` polls it (progress, then ``mlmtool explain --json``'s result);
* ``GET /api/heads?model=``: the heads.json given at start (``--heads``);
* ``GET /docs``: the API's documentation, from ``/openapi.json``, served offline.

Safety rules (a server, even on localhost): no request names a file or a model that was not
loaded at start (request bodies reject unknown fields); bodies are limited to
``Limits.max_body_bytes`` and texts to ``Limits.max_text_chars``; POST bodies must be JSON
(so a foreign web page cannot send one without a CORS preflight); the Host header must be
one of ``allowed_hosts`` (DNS-rebinding protection; loopback names by default); no CORS
header is sent unless ``cors`` names origins. Every error is JSON ``{"error": message}``
with a 4xx status (400 library error, 404, 405, 413 too large, 415 not JSON, 422 invalid,
429 busy; 503 only while the server stops); an unexpected bug answers 500 with a one-line JSON message and its traceback
goes to the server log only. Concurrency: :mod:`mlmtool.server.worker`.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..analysis.fill import DEFAULT_BEAM, DEFAULT_MAX_PIECES
from ..errors import MlmtoolError
from .worker import BusyError, ExplainJobs, ModelGate, guarded

log = logging.getLogger("mlmtool.server")

#: Host names a loopback server answers to (the Host header, port removed).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Every refusal names the limit it hit.

    Attributes:
        max_body_bytes: request body size (default 64 KiB), HTTP 413.
        max_text_chars: characters per text (default 2,000), HTTP 422; the model's own
            token limit applies too (HTTP 400).
        max_top_k: candidates per mask (default 100).
        max_pieces: pieces per predicted word (default 8); max_beam: beam width (default 16).
        max_sentences: sentences (or minimal pairs) per ``/api/embed``, ``/api/score`` or
            ``/api/compare`` request (default 32).
        max_evals: SHAP evaluation budget per explanation (default 2,000).
        max_explain_jobs: SHAP jobs queued or running at once (default 4), HTTP 429.
        max_waiting: requests waiting for one model at once (default 64), HTTP 429.
    """

    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 2000
    max_top_k: int = 100
    max_pieces: int = 8
    max_beam: int = 16
    max_sentences: int = 32
    max_evals: int = 2000
    max_explain_jobs: int = 4
    max_waiting: int = 64


class ApiError(Exception):
    """A refusal with an HTTP status and one line (``param``: the request field, if any)."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


# ---- request bodies (unknown fields are refused: no request can smuggle a path) ----

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="A model loaded at start (GET /api/models); "
                                                "default: the first one.")


class _Fill(_Body):
    """The options of ``mlmtool predict`` (same names, same defaults)."""

    top_k: int = Field(5, description="Candidates per mask, or complete sentences with several masks "
                                      "(1 to max_top_k).")
    max_pieces: int = Field(DEFAULT_MAX_PIECES, description="Most vocabulary pieces per word (1 = one piece, "
                                                            "as the HF fill-mask pipeline; up to max_pieces).")
    beam: int = Field(DEFAULT_BEAM, description="Beam width of the word and sentence search (up to max_beam).")
    independent: bool = Field(False, description="With several masks: one list per mask instead of "
                                                 "complete sentences.")

    def options(self) -> dict:
        return {"top_k": self.top_k, "max_pieces": self.max_pieces, "beam": self.beam,
                "independent": self.independent}


class PredictRequest(_Fill):
    """One sentence with [MASK] (or the model's own mask token)."""

    text: str = Field(..., description="One sentence; [MASK] marks each word to guess.",
                      examples=["The [MASK] sat on the mat."])


class AttentionRequest(_Body):
    """One sentence ([MASK] optional)."""

    text: str = Field(..., description="One sentence.", examples=["The cat sat on the mat."])
    precision: Literal["uint8", "float16"] = Field(
        "uint8", description="uint8: round(weight * 255), error at most 1/510; float16: half floats.")


class ViewRequest(_Fill):
    """One sentence for the page ([MASK] optional)."""

    text: str = Field(..., description="One sentence.", examples=["The [MASK] sat on the mat."])


class EmbedRequest(_Body):
    """Sentences whose words are placed on a plane by their contextual vectors."""

    texts: list[str] = Field(..., description="1 to max_sentences sentences.",
                             examples=[["He sat on the bank of the river.", "The bank lends money."]])
    layer: int | None = Field(None, description="0 = input embeddings, 1..L = output of layer L; "
                                                "default the last.")
    method: Literal["pca", "tsne"] = Field("pca", description="scikit-learn PCA or t-SNE.")
    keep_special: bool = Field(False, description="Also place [CLS], [SEP], ...")
    perplexity: float | None = Field(None, description="t-SNE perplexity (default: chosen for the "
                                                       "number of points).")
    seed: int = Field(0, description="t-SNE random seed.")


class ExplainRequest(_Body):
    """One sentence with [MASK]: which words raise or lower p(target) there (SHAP)."""

    text: str = Field(..., description="One sentence with [MASK].", examples=["The [MASK] sat on the mat."])
    target: str | None = Field(None, description="The word whose probability is explained "
                                                 "(one token); default the top prediction.")
    mask: int = Field(1, description="Which [MASK] (from 1).")
    max_evals: int = Field(500, description="SHAP's evaluation budget (3 to max_evals).")
    seed: int = Field(0, description="Seed for SHAP's tie-breaking.")


class ScoreRequest(_Body):
    """Sentences to score by pseudo-log-likelihood, or minimal pairs (give exactly one of the three)."""

    text: str | None = Field(None, description="One sentence: the answer is one score, as "
                                               "`mlmtool score --json TEXT`.", examples=["The cats sleep."])
    texts: list[str] | None = Field(None, description="1 to max_sentences sentences: a list of scores.")
    pairs: list[list[str]] | None = Field(None, description="1 to max_sentences [good, bad] or [good, bad, "
                                                            "phenomenon]: accuracy, as `mlmtool score --pairs`.")
    variant: Literal["original", "word-l2r"] = Field("original", description="Salazar et al. 2020, or "
                                                                             "Kauf & Ivanova 2023.")


class CompareRequest(_Body):
    """Two models on the same sentence(s), or one model on two sentences."""

    model: str | None = Field(None, description="One model: compare two texts with it (default the first).")
    models: list[str] | None = Field(None, description="Two loaded models [A, B]: compare them on texts.")
    texts: list[str] = Field(..., description="Two models: 1 to max_sentences sentences; one model: exactly two.",
                             examples=[["The doctor said he [MASK].", "The doctor said she [MASK]."]])
    top_k: int = Field(5, description="Candidates per mask (1 to max_top_k).")


# ---- the shared computations -------------------------------------------------------

def predict_payload(lm, text: str, **options) -> dict:
    """What ``mlmtool predict --json TEXT`` prints for one sentence, as a dict: the same
    :func:`~mlmtool.analysis.predict.predict` and :func:`~mlmtool.analysis.predict.predict_json`.

    ``options``: ``top_k``, ``max_pieces``, ``beam``, ``independent`` (the command's flags).
    """
    from ..analysis.predict import predict, predict_json

    return predict_json(predict(lm, text, **options))  # type: ignore[return-value]


def attention_payload(result, precision: str = "uint8") -> dict:
    """An :class:`~mlmtool.analysis.attention.AttentionResult` with its weights packed by
    :func:`~mlmtool.render.html_view.encode_attention` (``shape`` ``[L, H, S, S]``)."""
    from ..render.html_view import encode_attention

    return {"text": result.text, "model": result.model_name, "tokens": list(result.tokens),
            "special": [bool(s) for s in result.special], "word_ids": list(result.word_ids),
            "layers": result.num_layers, "heads": result.num_heads,
            "attention": encode_attention(result.attention, precision)}  # type: ignore[arg-type]


# ---- the app -------------------------------------------------------------------------

def create_app(models: dict[str, Any], *, heads: dict[str, Any] | None = None,
               cors: list[str] | tuple[str, ...] | None = None, limits: Limits | None = None,
               allowed_hosts: list[str] | tuple[str, ...] | None = LOOPBACK_HOSTS) -> FastAPI:
    """Build the web app around models that are already loaded.

    Args:
        models: ``{name: LoadedModel}``, the only models requests can use; the first is
            the default. Names are what requests and the page's model switcher say.
        heads: ``{name: heads.json object}`` (e.g. from ``mlmtool heads``) per model, served
            by ``/api/heads`` and used to label the heads on the page; None = none.
        cors: origins allowed to call the API from other pages (``["http://localhost:3000"]``);
            None (default) sends no CORS header at all.
        limits: request limits (default :class:`Limits`).
        allowed_hosts: Host header values answered (port ignored; ``None`` = any, for a
            server bound to a public interface). Default: the loopback names.

    Returns:
        A ``fastapi.FastAPI`` (ASGI) application; ``app.state.gates[name]`` is each model's
        :class:`~mlmtool.server.worker.ModelGate`, ``app.state.jobs`` the SHAP queue.

    Raises:
        MlmtoolError: no models, or heads for a model that is not loaded, or heads that
            name heads outside their model.
    """
    from ..render.html_view import head_labels_from
    from .page import docs_html, page_html, static_asset

    if not models:
        raise MlmtoolError("create_app needs at least one loaded model", param="models")
    limits = limits or Limits()
    models = dict(models)
    default = next(iter(models))
    heads = dict(heads or {})
    labels: dict[str, dict[str, str]] = {}
    for name, obj in heads.items():
        if name not in models:
            raise MlmtoolError(f"heads given for model '{name}', which is not loaded", param="heads")
        labels[name] = head_labels_from(obj, models[name].num_layers, models[name].num_heads)
    gates = {name: ModelGate(limits.max_waiting) for name in models}

    def run_explain(job, on_call) -> dict:
        from ..analysis.explain import explain

        p = job.params
        lm = guarded(models[job.model], gates[job.model], on_call)
        return explain(lm, p["text"], target=p["target"], mask_index=p["mask"], max_evals=p["max_evals"],
                       seed=p["seed"], progress=False).to_dict()

    jobs = ExplainJobs(run_explain, max_jobs=limits.max_explain_jobs)

    app = FastAPI(
        title="mlmtool serve", version=_version(), docs_url=None, redoc_url=None,
        description=("The mlmtool toolkit over HTTP: predictions, attention, embeddings and SHAP "
                     "explanations for the models loaded at start. Every answer is the JSON the "
                     "command line prints with --json. Errors are JSON {\"error\": message}."))
    app.state.models, app.state.gates, app.state.jobs, app.state.limits = models, gates, jobs, limits

    # ---- helpers ----
    def pick(name: str | None):
        if name is None:
            name = default
        if name not in models:
            raise ApiError(400, f"model '{name}' is not loaded; this server has: {', '.join(models)}",
                           "model")
        return name, models[name], gates[name]

    def check_text(text: str, field: str = "text") -> str:
        if len(text) > limits.max_text_chars:
            raise ApiError(422, f"{field} is {len(text)} characters long; this server accepts at most "
                                f"{limits.max_text_chars} (the limit max_text_chars)", field)
        return text

    def check_range(value: int, low: int, high: int, field: str, limit: str) -> int:
        if not low <= value <= high:
            raise ApiError(422, f"{field} must be between {low} and {high} (the limit {limit}), got {value}",
                           field)
        return value

    @contextmanager
    def hold_all(*names: str):
        """Hold the gates of several models, always in name order (no deadlock)."""
        with ExitStack() as stack:
            for n in sorted(set(names)):
                stack.enter_context(gates[n].hold())
            yield

    def check_fill(req) -> dict:
        check_range(req.top_k, 1, limits.max_top_k, "top_k", "max_top_k")
        check_range(req.max_pieces, 1, limits.max_pieces, "max_pieces", "max_pieces")
        check_range(req.beam, 1, limits.max_beam, "beam", "max_beam")
        return req.options()

    def fill_request(req):
        """``(name, lm, gate, fill options)`` of a checked request with text and fill options."""
        check_text(req.text)
        options = check_fill(req)
        return (*pick(req.model), options)

    def check_count(items: list, field: str) -> list:
        if not 1 <= len(items) <= limits.max_sentences:
            raise ApiError(422, f"{field} must hold 1 to {limits.max_sentences} items (the limit "
                                f"max_sentences), got {len(items)}", field)
        return items

    # ---- errors: always JSON, never a traceback ----
    def error(status: int, message: str, param: str | None = None) -> JSONResponse:
        body: dict[str, Any] = {"error": message, "status": status}
        if param:
            body["param"] = param
        return JSONResponse(body, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.param)

    @app.exception_handler(MlmtoolError)
    async def _library_error(request: Request, exc: MlmtoolError):
        return error(400, str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                     getattr(exc, "param", None))

    @app.exception_handler(BusyError)
    async def _busy(request: Request, exc: BusyError):
        return error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error(422, validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        messages = {404: f"no such page or endpoint: {request.url.path}",
                    405: f"{request.method} is not allowed on {request.url.path}"}
        return error(exc.status_code, messages.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        # Starlette re-raises after this answer, so uvicorn logs the traceback.
        return error(500, f"internal error ({type(exc).__name__}); the traceback is in the server log")

    # ---- pages ----
    page = page_html(models, default, limits)

    @app.get("/", include_in_schema=False)
    def index():
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP})

    @app.get("/docs", include_in_schema=False)
    def docs():
        return HTMLResponse(docs_html(app.openapi()), headers={"Content-Security-Policy": DOCS_CSP})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        asset = static_asset(name)  # a fixed set of package files; anything else is 404
        if asset is None:
            raise StarletteHTTPException(404)
        text, media = asset
        return Response(text, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    # ---- the API ----
    @app.get("/api/models", summary="The loaded models and the server's limits")
    def api_models():
        return {"default": default, "limits": asdict(limits),
                "models": [{"name": n, "layers": lm.num_layers, "heads": lm.num_heads,
                            "has_mlm_head": lm.has_mlm_head, "mask_token": lm.mask_token,
                            "max_length": lm.max_length, "head_labels": n in labels}
                           for n, lm in models.items()]}

    @app.post("/api/predict", summary="Fill [MASK]: the same JSON as `mlmtool predict --json`")
    def api_predict(req: PredictRequest):
        _, lm, gate, options = fill_request(req)
        with gate.hold():
            return predict_payload(lm, req.text, **options)

    @app.post("/api/attention", summary="Attention of every layer and head, quantised as in the static view")
    def api_attention(req: AttentionRequest):
        from ..analysis.attention import attention

        check_text(req.text)
        _, lm, gate = pick(req.model)
        with gate.hold():
            result = attention(lm, req.text)
        return attention_payload(result, req.precision)

    @app.post("/api/view", summary="Everything the page draws for one sentence (the static view's data)")
    def api_view(req: ViewRequest):
        from ..analysis.attention import view_inputs
        from ..render.html_view import view_payload

        name, lm, gate, options = fill_request(req)
        with gate.hold():
            att, prediction, note = view_inputs(lm, req.text, **options)
        payload = view_payload(att, prediction, head_labels=labels.get(name), note=note,
                               title=f"mlmtool: {name}")
        payload["model"] = name
        return payload

    @app.post("/api/embed", summary="Words on a plane by their contextual vectors: `mlmtool embed --json`")
    def api_embed(req: EmbedRequest):
        from ..analysis.embed import project, word_vectors

        for i, t in enumerate(check_count(req.texts, "texts")):
            check_text(t, f"texts[{i}]")
        _, lm, gate = pick(req.model)
        with gate.hold():
            vectors = word_vectors(lm, req.texts, layer=req.layer, keep_special=req.keep_special)
        return project(vectors, method=req.method, perplexity=req.perplexity, seed=req.seed).to_dict()

    @app.post("/api/score", summary="Pseudo-log-likelihood of sentences, or minimal pairs: `mlmtool score --json`")
    def api_score(req: ScoreRequest):
        from ..analysis.score import score_pairs, score_sentences

        given = [f for f in ("text", "texts", "pairs") if getattr(req, f) is not None]
        if len(given) != 1:
            raise ApiError(422, "give exactly one of text, texts and pairs"
                           + (f" (got {', '.join(given)})" if given else ""))
        _, lm, gate = pick(req.model)
        if req.pairs is not None:
            for i, pair in enumerate(check_count(req.pairs, "pairs")):
                if len(pair) not in (2, 3):
                    raise ApiError(422, f"pairs[{i}] must be [good, bad] or [good, bad, phenomenon]", "pairs")
                for j, t in enumerate(pair):
                    check_text(t, f"pairs[{i}][{j}]")
            with gate.hold():
                # "line" = the pair's place in the list, from 1 (a file's line number in the CLI)
                rows = [(p[0], p[1], p[2] if len(p) > 2 else "", i + 1) for i, p in enumerate(req.pairs)]
                return score_pairs(lm, rows, variant=req.variant).to_dict()
        texts = [check_text(req.text)] if req.text is not None else check_count(req.texts, "texts")
        for i, t in enumerate(texts):
            check_text(t, f"texts[{i}]")
        with gate.hold():
            scores = score_sentences(lm, texts, variant=req.variant)
        return scores[0].to_dict() if req.text is not None else [s.to_dict() for s in scores]

    @app.post("/api/compare", summary="Two models on a text, or one model on two texts: "
                                      "`mlmtool compare --json`")
    def api_compare(req: CompareRequest):
        from ..analysis.compare import compare_models, compare_texts

        for i, t in enumerate(check_count(req.texts, "texts")):
            check_text(t, f"texts[{i}]")
        check_range(req.top_k, 1, limits.max_top_k, "top_k", "max_top_k")
        if req.models is not None:
            if req.model is not None or len(req.models) != 2:
                raise ApiError(422, "models must name two loaded models [A, B] (and then no model)", "models")
            (na, lm_a, _), (nb, lm_b, _) = pick(req.models[0]), pick(req.models[1])
            with hold_all(na, nb):
                return compare_models(lm_a, lm_b, req.texts, top_k=req.top_k).to_dict()
        if len(req.texts) != 2:
            raise ApiError(422, f"one model compares two texts, not {len(req.texts)}; give models [A, B] to "
                                "compare two models", "texts")
        name, lm, _ = pick(req.model)
        with hold_all(name):
            return compare_texts(lm, req.texts[0], req.texts[1], top_k=req.top_k).to_dict()

    @app.post("/api/explain", status_code=202,
              summary="Start a SHAP explanation (seconds); poll GET /api/explain/{id} for progress and result")
    def api_explain(req: ExplainRequest):
        from ..analysis.explain import resolve_target
        from ..core.forward import encode

        check_text(req.text)
        check_range(req.max_evals, 3, limits.max_evals, "max_evals", "max_evals")
        name, lm, gate = pick(req.model)
        lm.require_mlm_head()
        ids = encode(lm, [req.text], need_mask=True)["input_ids"][0]  # tokenizer only: fails fast
        n_masks = sum(t == lm.mask_token_id for t in ids)
        check_range(req.mask, 1, n_masks, "mask", "the number of [MASK] in the text")
        if req.target is not None:
            resolve_target(lm, req.text, req.target, req.mask)
        params = {"text": req.text, "target": req.target, "mask": req.mask, "max_evals": req.max_evals,
                  "seed": req.seed}
        job = jobs.submit(name, params, req.max_evals)
        found = jobs.get(job.id)
        return {**job.to_dict(found[1] if found else None), "url": f"/api/explain/{job.id}"}

    @app.get("/api/explain/{job_id}", summary="A SHAP job: status, progress, and the result of "
                                              "`mlmtool explain --json` when done")
    def api_explain_job(job_id: str):
        found = jobs.get(job_id) if _JOB_ID.match(job_id) else None
        if found is None:
            raise ApiError(404, f"no explain job '{job_id[:40]}' (finished jobs are kept for the last "
                                f"{jobs.keep} explanations)", "job_id")
        job, ahead = found
        return job.to_dict(ahead)

    @app.get("/api/heads", summary="The heads.json given at start with --heads, for one model")
    def api_heads(model: str | None = Query(None, description="A loaded model; default the first.")):
        name, _, _ = pick(model)
        if name not in heads:
            raise ApiError(404, f"no heads.json was given for model '{name}' (start the server with "
                                "--heads FILE)", "model")
        return heads[name]

    # ---- middleware (pure ASGI, outermost last) ----
    app.add_middleware(_Guard, limits=limits, allowed_hosts=allowed_hosts)
    if cors:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type"])
    return app


#: The page's Content-Security-Policy: its own scripts only, requests to itself only.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data: blob:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: The docs page has no script at all.
DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"


def validation_message(errors: list[dict]) -> str:
    """One line from pydantic's errors: ``field: what is wrong`` (the first error, plus a count)."""
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) if loc else "body"
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        msg = f"unknown field '{where}' (this endpoint does not take it)"
    elif kind == "missing":
        msg = f"{where} is required"
    elif kind in ("json_invalid", "json_type", "model_attributes_type") or where == "body":
        msg = "the body must be a JSON object (Content-Type: application/json)"
    else:
        msg = f"{where}: {first.get('msg', 'invalid value')}"
    more = len(errors) - 1
    return msg + (f" (and {more} more problem{'s' * (more > 1)})" if more > 0 else "")


class _Guard:
    """ASGI middleware: Host check, body size limit, JSON-only POST, and safety headers.

    Pure ASGI (no ``BaseHTTPMiddleware``), so it adds no task per request.
    """

    def __init__(self, app, limits: Limits, allowed_hosts):
        self.app = app
        self.limits = limits
        self.allowed = None if allowed_hosts is None else {h.strip("[]").lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed is not None:
            host = _host_name(headers.get("host", ""))
            if host not in self.allowed:
                return await _send_json(send, 400, f"host '{host[:80]}' is not served here (the server "
                                                   "answers only to its own address)")
        limit = self.limits.max_body_bytes
        length = headers.get("content-length")
        too_big = (f"the request body is larger than {limit} bytes (the limit max_body_bytes)")
        if length is not None:
            if not length.isdigit():
                return await _send_json(send, 400, "Content-Length is not a number")
            if int(length) > limit:
                return await _send_json(send, 413, too_big)
        if scope["method"] in ("POST", "PUT", "PATCH"):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return await _send_json(send, 415, "the body must be JSON: send Content-Type: application/json")
            # read the whole (small) body now, counting bytes even without Content-Length
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return await _send_json(send, 413, too_big)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            receive_next = replay
        else:
            receive_next = receive

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"x-frame-options", b"DENY")]
                have = {k.lower() for k, _ in message.get("headers", [])}
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [h for h in extra if h[0] not in have]
            await send(message)

        await self.app(scope, receive_next, send_with_headers)


def _host_name(host: str) -> str:
    """The host of a Host header without its port (``[::1]:8000`` → ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _send_json(send, status: int, message: str) -> None:
    """Answer a request from the middleware with ``{"error": message}``."""
    body = json.dumps({"error": message, "status": status}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})


def _version() -> str:
    from .. import __version__

    return __version__
