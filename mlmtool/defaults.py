"""One source for the defaults that the library, the command line and the web app share.

Every ``top_k=``/``max_evals=`` default in :mod:`mlmtool` reads these constants, and the CLI
options and the server's request models take their defaults from the library (never a
literal of their own).
"""

from __future__ import annotations

#: Candidates per mask (``-k/--top-k``), as in the HF fill-mask pipeline's default.
TOP_K = 5

#: Heads listed as most changed by ``compare`` (``--top-heads``) and in its JSON and reports.
TOP_HEADS = 10

#: ``heads --conllu``: relations with fewer gold arcs than this are not probed (``--min-count``).
MIN_COUNT = 100

#: ``heads``: the score a head needs to be labelled with a pattern (``--threshold``).
THRESHOLD = 0.5

#: SHAP's evaluation budget for ``explain`` (``--max-evals``): model calls of the Partition
#: explainer (shap's own default is 500 as well).
MAX_EVALS = 500
