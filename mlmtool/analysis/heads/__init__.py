"""What does each attention head do? Score every head on standard patterns over many sentences.

Method: Clark, Khandelwal, Levy & Manning (2019), "What Does BERT Look At? An Analysis of
BERT's Attention", BlackboxNLP (arXiv:1906.04341). The package is split by job:

* :mod:`.metrics`: plain NumPy per sentence (word units, word-level attention, the metrics);
* :mod:`.scores`: the results (:class:`HeadScores`, :class:`PairScores`), head labels and
  the ``heads.json`` layout;
* :mod:`.sentences`: the sentence sets (``datasets/heads/<lang>.txt``), tokenizing once,
  ``WORD:WORD`` pairs;
* :mod:`.run`: :func:`score_heads`, the one pass of the model (the forward core) over the
  sentences;
* :mod:`.syntax`: the dependency probe against gold treebanks (Clark et al. 2019 §4).

The names below are re-exported for convenience; none equals a submodule's name, so
importing a submodule never hides a function (the facade rule of ``mlmtool/__init__.py``).
"""

from __future__ import annotations

from .metrics import (METRICS, PATTERNS, SentenceUnits, is_punctuation, pair_sentence, sentence_metrics,
                      sentence_units, word_attention)
from .run import score_heads, score_prepared, score_results
from .scores import (BROAD, CITATION, DEFAULT_BROAD_THRESHOLD, DEFAULT_THRESHOLD, JSON_VERSION, MIXED,
                     READINGS, TITLES, HeadExample, HeadScores, Link, PairScores, head_labels)
from .sentences import (PreparedSentences, cooccurring, dataset_dirs, dataset_path, default_sentences,
                        parse_pair, prepare_sentences)
from .syntax import DependencyTree, SyntaxScores, read_conllu, score_syntax

__all__ = [
    "BROAD", "CITATION", "DEFAULT_BROAD_THRESHOLD", "DEFAULT_THRESHOLD", "JSON_VERSION", "METRICS", "MIXED",
    "PATTERNS", "READINGS", "TITLES", "HeadExample", "HeadScores", "Link", "PairScores", "PreparedSentences",
    "SentenceUnits", "cooccurring", "dataset_dirs", "dataset_path", "default_sentences", "head_labels",
    "is_punctuation", "pair_sentence", "parse_pair", "prepare_sentences", "score_heads", "score_prepared",
    "score_results", "sentence_metrics", "sentence_units", "word_attention",
    "DependencyTree", "SyntaxScores", "read_conllu", "score_syntax",
]
