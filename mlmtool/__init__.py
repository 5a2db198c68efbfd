"""mlmtool: look inside masked language models (BERT and its family).

The public API (heavy modules are imported on first use, so ``mlmtool --help`` is instant)::

    import mlmtool
    lm = mlmtool.load("minilm")                    # or load(lang="fr"), load("path/to/dir")
    res = mlmtool.attention(lm, "The cat sat on the mat.")
    res.attention.shape                            # (layers, heads, seq, seq)
    mlmtool.render_head(res, layer=1, head=1).save("head.png")   # layers/heads count from 1
    mlmtool.predict(lm_with_head, "The [MASK] sat on the mat.", top_k=5)

``fill_words`` is an alias of ``predict`` (the same search and results; ``predict`` is the
name to use).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "probe": "mlmtool.analysis.probe",
    "ProbeResult": "mlmtool.analysis.probe",
    "render_probe": "mlmtool.render.probe_view",
    "load": "mlmtool.models",
    "LoadedModel": "mlmtool.models",
    "REGISTRY": "mlmtool.registry",
    "ModelEntry": "mlmtool.registry",
    "predict": "mlmtool.analysis.predict",
    "Prediction": "mlmtool.analysis.predict",
    "fill_words": "mlmtool.analysis.fill",  # the alias of predict (same function, batch_size keyword-only)
    "SentenceCandidate": "mlmtool.analysis.fill",
    "score_sentences": "mlmtool.analysis.score",
    "score_pairs": "mlmtool.analysis.score",
    "read_pairs": "mlmtool.analysis.score",
    "SentenceScore": "mlmtool.analysis.score",
    "PairsResult": "mlmtool.analysis.score",
    "render_score_text": "mlmtool.render.score_view",
    "render_score_html": "mlmtool.render.score_view",
    "render_score_png": "mlmtool.render.score_view",
    "attention": "mlmtool.analysis.attention",
    "AttentionResult": "mlmtool.analysis.attention",
    "render_head": "mlmtool.render.diagrams",
    "render_head_svg": "mlmtool.render.diagrams",
    "render_overview": "mlmtool.render.diagrams",
    "save_attention_diagrams": "mlmtool.render.diagrams",
    "render_view": "mlmtool.render.html_view",
    "HTMLView": "mlmtool.render.html_view",
    "layerwise_predictions": "mlmtool.analysis.layerwise",
    "LayerwisePrediction": "mlmtool.analysis.layerwise",
    "attention_rollout": "mlmtool.analysis.rollout",
    "attention_flow": "mlmtool.analysis.rollout",
    "AttentionSummary": "mlmtool.analysis.rollout",
    "aggregate_words": "mlmtool.analysis.words",
    "aggregate_summary": "mlmtool.analysis.words",
    "render_summary": "mlmtool.render.summary",
    "render_summary_svg": "mlmtool.render.summary",
    "render_layerwise": "mlmtool.render.layerwise",
    "score_heads": "mlmtool.analysis.heads.run",
    "HeadScores": "mlmtool.analysis.heads.scores",
    "head_labels": "mlmtool.analysis.heads.scores",
    "score_syntax": "mlmtool.analysis.heads.syntax",
    "word_vectors": "mlmtool.analysis.embed",
    "project": "mlmtool.analysis.embed",
    "load_vectors": "mlmtool.analysis.embed",
    "WordVectors": "mlmtool.analysis.embed",
    "Projection": "mlmtool.analysis.embed",
    "explain": "mlmtool.analysis.explain",
    "ExplainResult": "mlmtool.analysis.explain",
    "render_embedding": "mlmtool.render.embed_view",
    "render_embedding_html": "mlmtool.render.embed_view",
    "render_explain_text": "mlmtool.render.explain_view",
    "render_explain_html": "mlmtool.render.explain_view",
    "render_explain_bars": "mlmtool.render.explain_view",
    "render_metric_heatmap": "mlmtool.render.heads_view",
    "render_head_labels": "mlmtool.render.heads_view",
    "render_heads_markdown": "mlmtool.render.heads_view",
    "save_heads_report": "mlmtool.render.heads_view",
    "compare_models": "mlmtool.analysis.compare",
    "compare_texts": "mlmtool.analysis.compare",
    "ComparisonResult": "mlmtool.analysis.compare",
    "render_compare_heatmap": "mlmtool.render.compare_view",
    "render_compare_html": "mlmtool.render.compare_view",
    "finetune": "mlmtool.training.train",
    "FinetuneConfig": "mlmtool.training.config",
    "FinetuneResult": "mlmtool.training.output",
    "create_app": "mlmtool.server.app",
    "build_index": "mlmtool.analysis.corpus.build",
    "load_index": "mlmtool.analysis.corpus.store",
    "CorpusIndex": "mlmtool.analysis.corpus.store",
    "IndexInfo": "mlmtool.analysis.corpus.store",
    "search": "mlmtool.analysis.corpus.query",
    "SearchResult": "mlmtool.analysis.corpus.query",
    "SearchHit": "mlmtool.analysis.corpus.query",
    "MlmtoolError": "mlmtool.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    """Import public names lazily (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlmtool' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
