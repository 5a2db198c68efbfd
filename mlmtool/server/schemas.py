"""What a request may say: the JSON bodies of the API and the server's limits on them.

The bodies are pydantic models that refuse unknown fields (no request can smuggle a path);
their defaults and choices are the library's (:mod:`mlmtool.defaults`,
:data:`mlmtool.analysis.score.VARIANTS`, ...), the same the command line reads. What depends
on the server's configuration (lengths, counts, ranges) is checked by :class:`Limits`, whose
refusals are :class:`~mlmtool.server.handlers.ApiError` (HTTP 422) naming the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..analysis.embed import METHODS
from ..analysis.fill import DEFAULT_BEAM, DEFAULT_MAX_PIECES
from ..analysis.score import VARIANTS
from ..defaults import MAX_EVALS, THRESHOLD, TOP_K
from ..render.html_view import Precision
from .handlers import ApiError


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

    def check_text(self, text: str, field: str = "text") -> str:
        """``text`` itself. Raises: ApiError (422): longer than ``max_text_chars``."""
        if len(text) > self.max_text_chars:
            raise ApiError(422, f"{field} is {len(text)} characters long; this server accepts at most "
                                f"{self.max_text_chars} (the limit max_text_chars)", field)
        return text

    def check_texts(self, texts: list[str], field: str = "texts") -> list[str]:
        """``texts`` itself. Raises: ApiError (422): not 1 to ``max_sentences`` texts, or one too long."""
        for i, text in enumerate(self.check_count(texts, field)):
            self.check_text(text, f"{field}[{i}]")
        return texts

    def check_count(self, items: list, field: str) -> list:
        """``items`` itself. Raises: ApiError (422): not 1 to ``max_sentences`` items."""
        if not 1 <= len(items) <= self.max_sentences:
            raise ApiError(422, f"{field} must hold 1 to {self.max_sentences} items (the limit "
                                f"max_sentences), got {len(items)}", field)
        return items

    @staticmethod
    def check_range(value: int, low: int, high: int, field: str, limit: str) -> int:
        """``value`` itself. Raises: ApiError (422): outside ``[low, high]`` (``limit`` names the bound)."""
        if not low <= value <= high:
            raise ApiError(422, f"{field} must be between {low} and {high} (the limit {limit}), got {value}",
                           field)
        return value

    def check_fill(self, req: "_Fill") -> dict:
        """The fill options of ``req`` (:meth:`_Fill.options`), each within its limit."""
        self.check_range(req.top_k, 1, self.max_top_k, "top_k", "max_top_k")
        self.check_range(req.max_pieces, 1, self.max_pieces, "max_pieces", "max_pieces")
        self.check_range(req.beam, 1, self.max_beam, "beam", "max_beam")
        return req.options()


# ---- request bodies (unknown fields are refused: no request can smuggle a path) ----

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="A model loaded at start (GET /api/models); "
                                                "default: the first one.")


class _Fill(_Body):
    """The options of ``mlmtool predict`` (same names, same defaults)."""

    top_k: int = Field(TOP_K, description="Candidates per mask, or complete sentences with several masks "
                                          "(1 to max_top_k).")
    max_pieces: int = Field(DEFAULT_MAX_PIECES, description="Most vocabulary pieces per word (1 = one piece, "
                                                            "as the HF fill-mask pipeline; up to max_pieces).")
    beam: int = Field(DEFAULT_BEAM, description="Beam width of the word and sentence search (up to max_beam).")
    independent: bool = Field(False, description="With several masks: one list per mask instead of "
                                                 "complete sentences.")

    def options(self) -> dict:
        """``{top_k, max_pieces, beam, independent}``: the keyword arguments of ``predict``."""
        return {"top_k": self.top_k, "max_pieces": self.max_pieces, "beam": self.beam,
                "independent": self.independent}


class PredictRequest(_Fill):
    """One sentence with [MASK] (or the model's own mask token)."""

    text: str = Field(..., description="One sentence; [MASK] marks each word to guess.",
                      examples=["The [MASK] sat on the mat."])


class AttentionRequest(_Body):
    """One sentence ([MASK] optional)."""

    text: str = Field(..., description="One sentence.", examples=["The cat sat on the mat."])
    precision: Precision = Field(
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
    method: Literal[METHODS] = Field(METHODS[0], description="scikit-learn PCA or t-SNE.")  # type: ignore[valid-type]
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
    max_evals: int = Field(MAX_EVALS, description="SHAP's evaluation budget (3 to max_evals).")
    seed: int = Field(0, description="Seed for SHAP's tie-breaking.")


class ScoreRequest(_Body):
    """Sentences to score by pseudo-log-likelihood, or minimal pairs (give exactly one of the three)."""

    text: str | None = Field(None, description="One sentence: the answer is one score, as "
                                               "`mlmtool score --json TEXT`.", examples=["The cats sleep."])
    texts: list[str] | None = Field(None, description="1 to max_sentences sentences: a list of scores.")
    pairs: list[list[str]] | None = Field(None, description="1 to max_sentences [good, bad] or [good, bad, "
                                                            "phenomenon]: accuracy, as `mlmtool score --pairs`.")
    variant: Literal[VARIANTS] = Field(VARIANTS[0], description="Salazar et al. 2020, or "  # type: ignore[valid-type]
                                                                "Kauf & Ivanova 2023.")


class CompareRequest(_Body):
    """Two models on the same sentence(s), or one model on two sentences."""

    model: str | None = Field(None, description="One model: compare two texts with it (default the first).")
    models: list[str] | None = Field(None, description="Two loaded models [A, B]: compare them on texts.")
    texts: list[str] = Field(..., description="Two models: 1 to max_sentences sentences; one model: exactly two.",
                             examples=[["The doctor said he [MASK].", "The doctor said she [MASK]."]])
    top_k: int = Field(TOP_K, description="Candidates per mask (1 to max_top_k).")


# ---- the tabs of the page: layers, summaries, heads, search, probe (issue 29) ----

class LayersRequest(_Body):
    """One sentence with [MASK]: what the masked-LM head reads after every layer."""

    text: str = Field(..., description="One sentence with [MASK].", examples=["The [MASK] sat on the mat."])
    top_k: int = Field(TOP_K, description="Pieces per layer and mask (1 to max_top_k).")


class SummaryRequest(_Body):
    """One sentence: attention rollout or attention flow over a range of layers."""

    text: str = Field(..., description="One sentence ([MASK] optional).", examples=["The cat sat on the mat."])
    method: Literal["rollout", "flow"] = Field("rollout", description="Abnar & Zuidema 2020: rollout, or flow "
                                                                      "(at most 64 tokens).")
    layers: list[int] | None = Field(None, description="[first, last] layers, from 1, inclusive; default all.")


class HeadsRequest(_Body):
    """Sentences over which every attention head is scored (``mlmtool heads``)."""

    texts: list[str] = Field(..., description="1 to max_sentences sentences.",
                             examples=[["The cat sat on the mat.", "She opened the door."]])
    pairs: list[str] = Field([], description="WORD:WORD pairs to measure (at most 8), as `--pair`.")
    threshold: float = Field(THRESHOLD, ge=0, le=1, description="Minimum score for a head to be labelled "
                                                                 "with a pattern.")


class SearchRequest(_Body):
    """A sentence with one [bracketed] word: the corpus words nearest it (``mlmtool search``)."""

    query: str = Field(..., description="A sentence with one word in brackets.",
                       examples=["The [bank] of the river was muddy."])
    layer: int | None = Field(None, description="An indexed layer; default the last indexed one.")
    top_k: int = Field(20, description="Hits (1 to max_top_k).")
    words: Literal["any", "same", "other"] = Field("any", description="Every hit, the query's word only, "
                                                                      "or other words only.")
    pos: str | None = Field(None, max_length=32, description="Only hits with this UPOS tag (CoNLL-U indexes).")


class ProbeWordsRequest(_Body):
    """One sentence: the saved probes' labels for its words."""

    text: str = Field(..., description="One sentence.", examples=["The cat sat on the mat."])
    task: str = Field("upos", max_length=16, description="A label task the probes were trained on.")


class CompareViewRequest(CompareRequest):
    """As ``/api/compare``: the comparison page's data instead of its JSON."""
