"""Training data: read a text corpus, pack it into model-length chunks, mask it as BERT did.

* :func:`read_corpus` checks the files (missing, binary, not UTF-8, empty) and decides
  whether passages are lines or blank-line separated paragraphs.
* :func:`build_chunks` reads them with ``datasets.load_dataset("text")`` and packs passages
  into chunks of at most ``max_length`` tokens (:func:`pack`): long passages are split,
  short ones grouped (separated by the model's ``[SEP]``), no token is dropped. Everything
  stays in memory; ``datasets`` caches go to a temporary directory, never the user's.
* :func:`make_collator` is transformers' ``DataCollatorForLanguageModeling`` (BERT masking,
  Devlin et al. 2019, section 3.1; whole-word masking through its ``whole_word_mask=True``).
* :func:`fixed_eval_rows` masks the held-out chunks once, so every evaluation (before,
  during, after training, or of another run) measures the same task.
* :func:`split_corpus` does all of it for a run: chunks, the seeded held-out split, the
  masked held-out rows and the :class:`CorpusStats`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import MlmtoolError


@dataclass
class CorpusStats:
    """What the corpus became.

    Attributes:
        files: ``{"path": ..., "bytes": ...}`` per input file (``<stdin>`` for ``-``).
        bytes: total size in bytes.
        tokens: text tokens (special tokens not counted).
        train_chunks, eval_chunks: number of chunks of at most ``max_length`` tokens.
        eval_masked_tokens: held-out tokens the loss is measured on.
        sample_by: ``"line"`` or ``"paragraph"`` (blank-line separated).
    """

    files: list[dict]
    bytes: int
    tokens: int
    train_chunks: int
    eval_chunks: int
    eval_masked_tokens: int
    sample_by: str

    def describe(self, max_length: int) -> str:
        """One line for people: ``Corpus: 1.2 MB, 250,000 tokens in ... (... held out)``."""
        return (f"Corpus: {_size(self.bytes)}, {self.tokens:,} tokens in {self.train_chunks + self.eval_chunks:,} "
                f"chunks of up to {max_length} tokens ({self.train_chunks:,} for training, "
                f"{self.eval_chunks:,} held out)")


def _size(n: float) -> str:
    """Human-readable byte count (``1.2 MB``)."""
    for unit in ("bytes", "KB", "MB"):
        if n < 1000:
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"



def read_corpus(paths: Sequence[str | Path]) -> tuple[list[dict], str]:
    """Check corpus files and decide how to split them into passages.

    Args:
        paths: text files (UTF-8).

    Returns:
        ``(files, sample_by)``: ``[{"path", "bytes"}]`` and ``"paragraph"`` when any file
        has a blank line, else ``"line"``.

    Raises:
        MlmtoolError: a file is missing, a directory, binary (has NUL bytes), not UTF-8, or
            all files are empty/whitespace.
    """
    files, paragraphs, any_text = [], False, False
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise MlmtoolError(f"corpus file '{p}' not found")
        if path.is_dir():
            raise MlmtoolError(f"corpus '{p}' is a directory; give a text file")
        data = path.read_bytes()
        if b"\x00" in data:
            raise MlmtoolError(f"corpus '{p}' looks binary (it has NUL bytes); give a UTF-8 text file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MlmtoolError(f"corpus '{p}' is not UTF-8 text (bad byte at offset {exc.start}); "
                               "convert it, e.g. `iconv -t utf-8`") from None
        any_text = any_text or bool(text.strip())
        paragraphs = paragraphs or "\n\n" in text.replace("\r\n", "\n").replace("\n \n", "\n\n")
        files.append({"path": str(p), "bytes": len(data)})
    if not any_text:
        raise MlmtoolError("the corpus is empty: no text to train on")
    return files, "paragraph" if paragraphs else "line"


def _special_ids(tokenizer) -> tuple[int | None, int | None]:
    """The ids that open and close a sequence (``[CLS]``/``[SEP]``, ``<s>``/``</s>``)."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return start, end


def pack(batch: dict, tokenizer, max_length: int, with_offsets: bool) -> dict:
    """``datasets.map`` function: tokenize passages and pack them into chunks.

    Passages are joined with the end token (``[SEP]``) between them and cut into chunks of
    ``max_length`` tokens including the added ``[CLS]`` ... ``[SEP]``; a passage longer than
    a chunk continues in the next one. Every token lands in exactly one chunk.

    Returns:
        Columns ``input_ids`` ``[n_chunks][<= max_length]``, ``special_tokens_mask`` (1 for
        added/separator tokens, never masked), ``n_tokens`` (text tokens per chunk) and, when
        ``with_offsets``, ``offset_mapping`` (character spans, ``(0, 0)`` for special tokens)
        for whole-word masking.
    """
    start_id, end_id = _special_ids(tokenizer)
    wrap = [t for t in (start_id, end_id) if t is not None]
    body = max_length - len(wrap)
    enc = tokenizer(batch["text"], add_special_tokens=False, return_attention_mask=False,
                    return_token_type_ids=False, return_offsets_mapping=with_offsets)
    out: dict[str, list] = {"input_ids": [], "special_tokens_mask": [], "n_tokens": []}
    if with_offsets:
        out["offset_mapping"] = []
    ids: list[int] = []
    spec: list[int] = []
    offs: list = []

    def emit(lo: int, hi: int) -> None:
        while hi > lo and spec[hi - 1]:  # no separator right before the closing token
            hi -= 1
        if hi <= lo:
            return
        head = [start_id] if start_id is not None else []
        tail = [end_id] if end_id is not None else []
        out["input_ids"].append(head + ids[lo:hi] + tail)
        out["special_tokens_mask"].append([1] * len(head) + spec[lo:hi] + [1] * len(tail))
        out["n_tokens"].append((hi - lo) - sum(spec[lo:hi]))
        if with_offsets:
            out["offset_mapping"].append([(0, 0)] * len(head) + offs[lo:hi] + [(0, 0)] * len(tail))

    for i, piece_ids in enumerate(enc["input_ids"]):
        if not piece_ids:
            continue
        if ids and end_id is not None:
            ids.append(end_id)
            spec.append(1)
            offs.append((0, 0))
        ids.extend(piece_ids)
        spec.extend([0] * len(piece_ids))
        if with_offsets:
            offs.extend(tuple(o) for o in enc["offset_mapping"][i])
        lo = 0
        while len(ids) - lo >= body:
            emit(lo, lo + body)
            lo += body
            while lo < len(ids) and spec[lo]:  # no separator right after the opening token
                lo += 1
        ids, spec, offs = ids[lo:], spec[lo:], offs[lo:] if with_offsets else offs
    if ids:
        emit(0, len(ids))
    return out


def build_chunks(paths: Sequence[str | Path], tokenizer, max_length: int, *, sample_by: str = "line",
                 with_offsets: bool = False):
    """Read text files with ``datasets`` and pack them into model-length chunks.

    Args:
        paths: UTF-8 text files (checked by :func:`read_corpus` first).
        tokenizer: a fast tokenizer.
        max_length: tokens per chunk, special tokens included.
        sample_by: ``"line"`` or ``"paragraph"`` (``datasets``' text loader option).
        with_offsets: keep ``offset_mapping`` (needed for whole-word masking).

    Returns:
        An in-memory ``datasets.Dataset`` with the columns of :func:`pack`.
    """
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="mlmtool-datasets-") as cache:
        raw = datasets.load_dataset("text", data_files=[str(p) for p in paths], sample_by=sample_by,
                                    split="train", cache_dir=cache, keep_in_memory=True)
        return raw.map(pack, batched=True, batch_size=2000, remove_columns=raw.column_names,
                       keep_in_memory=True, fn_kwargs=dict(tokenizer=tokenizer, max_length=max_length,
                                                           with_offsets=with_offsets))


# ----------------------------------------------------------------------------- masking


def make_collator(tokenizer, mlm_probability: float = 0.15, whole_word_mask: bool = False,
                  seed: int | None = None):
    """The BERT masking collator: transformers' ``DataCollatorForLanguageModeling``.

    Token masking: each non-special token is chosen with ``mlm_probability``; a chosen token
    becomes the mask token (80 %), a random token (10 %) or stays (10 %) (Devlin et al. 2019,
    section 3.1). Whole-word masking: each word's first piece is chosen with
    ``mlm_probability`` and then all pieces of the word become mask tokens (transformers 5
    supports no random/unchanged share there).

    Args:
        tokenizer: the model's fast tokenizer.
        mlm_probability: share of tokens (or words) chosen (default 0.15).
        whole_word_mask: mask whole words; the examples must carry ``offset_mapping``.
        seed: seed for a private generator; None uses torch's global RNG (which the
            Trainer seeds and saves in checkpoints).

    Returns:
        A callable: examples (dicts with ``input_ids``, ``special_tokens_mask`` and, for
        whole words, ``offset_mapping``) → ``{"input_ids", "attention_mask", "labels"}``
        LongTensors ``[batch, seq]``; ``labels`` is -100 except at chosen positions.
    """
    from transformers import DataCollatorForLanguageModeling

    class _Collator(DataCollatorForLanguageModeling):
        """Pads ``offset_mapping`` (which ``tokenizer.pad`` cannot) before masking."""

        def torch_call(self, examples):
            examples = [{k: v for k, v in e.items() if k != "n_tokens"} for e in examples]
            if examples and "offset_mapping" in examples[0]:
                width = max(len(e["input_ids"]) for e in examples)
                left = self.tokenizer.padding_side == "left"
                for e in examples:
                    pad = [(0, 0)] * (width - len(e["offset_mapping"]))
                    offsets = [tuple(o) for o in e["offset_mapping"]]
                    e["offset_mapping"] = pad + offsets if left else offsets + pad
            return super().torch_call(examples)

    if whole_word_mask:
        return _Collator(tokenizer, mlm_probability=mlm_probability, whole_word_mask=True,
                         mask_replace_prob=1.0, random_replace_prob=0.0, seed=seed)
    return _Collator(tokenizer, mlm_probability=mlm_probability, seed=seed)


def fixed_eval_rows(dataset, collator, batch_size: int = 64) -> list[dict]:
    """Mask the held-out chunks once (seeded collator) so every evaluation sees the same task.

    Returns:
        One ``{"input_ids": [seq], "labels": [seq]}`` dict of int lists per chunk, unpadded.
    """
    rows = []
    for lo in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))])
        for ids, att, lab in zip(batch["input_ids"], batch["attention_mask"], batch["labels"]):
            n = int(att.sum())
            keep = att.bool()
            rows.append({"input_ids": ids[keep].tolist()[:n], "labels": lab[keep].tolist()[:n]})
    return rows


def split_corpus(files: list[dict], sample_by: str, tokenizer, max_length: int, *, eval_fraction: float,
                 seed: int, mlm_probability: float = 0.15, whole_word_mask: bool = False):
    """Chunk the corpus, hold ``eval_fraction`` of the chunks out and mask those once.

    Args:
        files, sample_by: from :func:`read_corpus`.
        tokenizer: the model's fast tokenizer.
        max_length: tokens per chunk, special tokens included.
        eval_fraction: share of the chunks held out (at least one chunk when above 0).
        seed: seeds the split (``datasets.train_test_split``) and the held-out masking.
        mlm_probability, whole_word_mask: the masking (:func:`make_collator`).

    Returns:
        ``(train, eval_rows, stats)``: the training ``datasets.Dataset`` (columns of
        :func:`pack` less ``n_tokens``), the masked held-out rows (:func:`fixed_eval_rows`;
        empty without a split) and :class:`CorpusStats`.

    Raises:
        MlmtoolError: too few chunks to hold any out and still train.
    """
    chunks = build_chunks([f["path"] for f in files], tokenizer, max_length, sample_by=sample_by,
                          with_offsets=whole_word_mask)
    n_tokens = int(sum(chunks["n_tokens"]))
    n_eval = 0 if eval_fraction == 0 else max(1, round(len(chunks) * eval_fraction))
    if len(chunks) - n_eval < 1:
        raise MlmtoolError(
            f"the corpus is too small: {n_tokens} tokens make {len(chunks)} chunk(s) of up to {max_length} "
            f"tokens, too few to hold {eval_fraction:.0%} out for evaluation; add text, lower "
            "max_length, or set eval_fraction to 0")
    if n_eval:
        split = chunks.train_test_split(test_size=n_eval, seed=seed, shuffle=True)
        train, held_out = split["train"], split["test"]
        eval_rows = fixed_eval_rows(held_out, make_collator(tokenizer, mlm_probability, whole_word_mask, seed=seed))
    else:
        train, eval_rows = chunks, []
    stats = CorpusStats(files=files, bytes=sum(f["bytes"] for f in files), tokens=n_tokens,
                        train_chunks=len(train), eval_chunks=n_eval,
                        eval_masked_tokens=sum(sum(1 for x in r["labels"] if x != -100) for r in eval_rows),
                        sample_by=sample_by)
    return train.remove_columns(["n_tokens"]), eval_rows, stats
