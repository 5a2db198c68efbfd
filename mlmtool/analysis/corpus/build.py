"""Build (or extend) a corpus index: one L2-normalised float16 vector per word per layer.

A word's vector is the mean of its pieces' hidden states, the rule of ``mlmtool embed``
(:mod:`mlmtool.analysis.embed`; words are the tokenizer's, :func:`mlmtool.tokens.word_ids_of`,
or a treebank's with ``conllu``). The corpus streams through in chunks of lines: each chunk's
vectors and word rows are written to ``INDEX_DIR/.building/`` as soon as they are computed
by a worker thread while the model runs on the next chunk (:class:`~.merge.LayerWriter`), so
memory stays at two chunks and a build stopped by Ctrl-C resumes from its last chunk. When every
chunk is there, :func:`~.merge.commit` fills each layer's faiss IVF index from them (learning
a new index's lists from a sample of all of them first), writes the new generation and
replaces the manifest (:mod:`.store`).
Under ``torchrun`` the chunks are dealt out to the processes and rank 0 merges (:mod:`.shard`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

from ...core.forward import iter_forward
from ...errors import MlmtoolError
from ...tokens import _CJK_CHAR, encode_words, word_ids_of, word_pieces, word_strings
from .merge import LayerWriter, commit
from .shard import Shard, shard_group
from .store import MANIFEST, WORK, IndexInfo, read_info, verify_files, weights_hash

#: Corpus lines per chunk (the unit of resuming and of the memory bound), at most. Sentences
#: are bucketed by length within a chunk, so a longer chunk pads less: on the benchmark's
#: treebank text, chunks of 512 lines padded 15 % more tokens than one bucketing of 2,000 lines,
#: chunks of 2,048 about 3 % (bench_search). See :func:`chunk_lines_for`.
CHUNK_LINES = 2048

#: Float16 vector bytes one chunk may hold (all indexed layers), at ~25 words per line.
CHUNK_BYTES = 64 * 2**20


def chunk_lines_for(layers: int, hidden_size: int) -> int:
    """The default lines per chunk: :data:`CHUNK_LINES`, fewer when many or wide layers would
    make a chunk's float16 vectors (``25 * lines * layers * hidden_size * 2`` bytes) exceed
    :data:`CHUNK_BYTES`, but at least 256 (one layer at hidden 384: 2,048; 13 layers at 768: 256)."""
    return min(CHUNK_LINES, max(256, CHUNK_BYTES // (25 * layers * hidden_size * 2)))


class Sentence(NamedTuple):
    """One corpus line (or treebank sentence): ``number`` from 0, its text, and, for a
    treebank, its words with UPOS and relation (None for plain text)."""

    number: int
    text: str
    words: list[str] | None = None
    space_after: list[bool] | None = None
    upos: list[str] | None = None
    relation: list[str] | None = None


class Encoded(NamedTuple):
    """Token ids of some sentences and where each word is: ``ids[i]`` ``[S]``,
    ``groups[i]`` piece positions per word, ``index[i]`` each word's number in its sentence
    (from 0), ``words[i]`` surface strings, ``spans[i]`` ``(start, end)`` characters in the text."""

    ids: list[list[int]]
    groups: list[list[list[int]]]
    index: list[list[int]]
    words: list[list[str]]
    spans: list[list[tuple[int, int]]]
    truncated: int


# --- reading the corpus ---------------------------------------------------------------------

def scan_text(path: str | Path, prefix_lines: int = 0) -> tuple[int, str, str]:
    """Check a UTF-8 text corpus and hash it, without keeping it in memory.

    Returns:
        ``(lines, prefix_sha256, full_sha256)``: the number of lines, the SHA-256 of the first
        ``prefix_lines`` lines and of all of them (line ends normalised to ``\\n``).

    Raises:
        MlmtoolError: no such file; a binary file (a NUL byte) or one that is not UTF-8; no
            line with text (empty corpus).
    """
    path = Path(path)
    if not path.is_file():
        raise MlmtoolError(f"no such corpus file: '{path}'")
    h, prefix, n, words = hashlib.sha256(), hashlib.sha256().hexdigest(), 0, False
    with path.open("rb") as fh:
        for raw in fh:
            if b"\0" in raw:
                raise MlmtoolError(f"'{path}' looks binary (a NUL byte on line {n + 1}); give a UTF-8 text "
                                   "file, one sentence per line")
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise MlmtoolError(f"'{path}' is not UTF-8 text (line {n + 1})") from None
            h.update(line.encode() + b"\n")
            words = words or bool(line.strip())
            n += 1
            if n == prefix_lines:
                prefix = h.hexdigest()
    if not words:
        raise MlmtoolError(f"the corpus '{path}' is empty: no line has text")
    return n, prefix, h.hexdigest()


def iter_text(path: str | Path, start: int = 0) -> Iterator[Sentence]:
    """The lines of a checked corpus (:func:`scan_text`) from line ``start`` (from 0)."""
    with Path(path).open("r", encoding="utf-8", newline=None) as fh:
        for number, line in enumerate(fh):
            if number >= start:
                yield Sentence(number, line.rstrip("\r\n"))


def read_treebank(path: str | Path) -> list[Sentence]:
    """A CoNLL-U treebank's sentences, each surface token a word with the UPOS and relation of
    its first syntactic word (multiword tokens: ``ADP+DET``, the words' tags joined).

    Raises:
        MlmtoolError: unreadable or empty treebank (from :func:`~mlmtool.analysis.heads.treebank.read_conllu`).
    """
    from ..heads.treebank import read_conllu

    out = []
    for number, tree in enumerate(read_conllu(path)):
        upos = [[] for _ in tree.tokens]
        rel = [[] for _ in tree.tokens]
        for w, t in enumerate(tree.token_of):
            upos[t].append(tree.upos[w])
            rel[t].append(tree.relations[w])
        text = "".join(tok + (" " if sp else "") for tok, sp in zip(tree.tokens, tree.space_after)).rstrip()
        out.append(Sentence(number, text, list(tree.tokens), list(tree.space_after),
                            ["+".join(u) for u in upos], ["+".join(r) for r in rel]))
    if not out:
        raise MlmtoolError(f"the treebank '{path}' has no sentences")
    return out


def treebank_hash(sentences: Sequence[Sentence]) -> str:
    """SHA-256 of a treebank's sentence texts, one per line (the corpus hash for ``conllu``)."""
    h = hashlib.sha256()
    for s in sentences:
        h.update(s.text.encode() + b"\n")
    return h.hexdigest()


# --- vectors ------------------------------------------------------------------------------------

def _spans(text: str, words: list[str]) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of ``words`` found in order in ``text`` (a word that
    cannot be found gets the cursor's position, an empty span)."""
    out, cursor = [], 0
    for w in words:
        p = text.find(w, cursor)
        if p < 0:
            out.append((cursor, cursor))
            continue
        out.append((p, p + len(w)))
        cursor = p + len(w)
    return out


def _text_words(tok, enc, i: int, text: str, fast: bool):
    """Word ids per token, word strings and ``(start, end)`` spans of text ``i`` of ``enc``.

    With a fast tokenizer and fewer than two Chinese/Japanese characters (no word for the
    segmenter to split), the tokenizer's own words and character offsets: the answer of
    :func:`~mlmtool.tokens.word_ids_of` and :func:`~mlmtool.tokens.word_strings`, without
    their per-token Python work. Otherwise those two functions.
    """
    if fast and len(_CJK_CHAR.findall(text)) < 2:
        wid = list(enc.word_ids(i))
        offsets = enc["offset_mapping"][i]
        words, spans = [], []
        for group in word_pieces(wid):
            a, b = offsets[group[0]][0], offsets[group[-1]][1]
            raw = text[a:b]
            word = raw.strip()  # a mask with lstrip=True spans its space (as word_strings)
            a += len(raw) - len(raw.lstrip())
            words.append(word)
            spans.append((a, a + len(word)))
        return wid, words, spans
    words = word_strings(text, enc, i, tok)
    return word_ids_of(enc, i, tok), words, _spans(text, words)


def encode_sentences(lm, sentences: Sequence[Sentence]) -> Encoded:
    """Tokenize sentences with at least one character of text; too long ones are cut.

    A sentence longer than ``lm.max_length`` keeps its first ``max_length - 1`` tokens and
    its final special token; a word with a piece cut off is left out.
    """
    tok = lm.tokenizer
    given = bool(sentences) and sentences[0].words is not None
    if given:
        ids, wids = encode_words(lm, [s.words for s in sentences], [s.space_after for s in sentences])
        words = [list(s.words) for s in sentences]
        spans = [_spans(s.text, ws) for s, ws in zip(sentences, words)]
    else:
        fast = getattr(tok, "is_fast", False)
        enc = tok([s.text for s in sentences], add_special_tokens=True, truncation=False, verbose=False,
                  return_offsets_mapping=fast)
        ids = [list(x) for x in enc["input_ids"]]
        wids, words, spans = [], [], []
        for i, s in enumerate(sentences):
            wid, ws, sp = _text_words(tok, enc, i, s.text, fast)
            wids.append(wid), words.append(ws), spans.append(sp)
    out = Encoded([], [], [], [], [], 0)
    for s, row, wid, ws, sp in zip(sentences, ids, wids, words, spans):
        groups = word_pieces(wid)
        present = sorted({w for w in wid if w is not None})  # a word may get no piece
        if len(row) > lm.max_length:
            row = row[:lm.max_length - 1] + row[-1:]
            out = out._replace(truncated=out.truncated + 1)
        keep = [k for k, g in enumerate(groups) if g[-1] < len(row) - 1]
        if given:  # the treebank's lists are per word, the tokenizer's per word with pieces
            ws, sp = [ws[w] for w in present], [sp[w] for w in present]
        out.ids.append(row)
        out.groups.append([groups[k] for k in keep])
        out.index.append([present[k] for k in keep])
        out.words.append([ws[k] for k in keep])
        out.spans.append([sp[k] for k in keep])
    return out


def pool_words(hidden, groups: list[list[int]]):
    """Mean of each word's pieces, L2-normalised: ``[layers, S, D]`` → ``float32 [layers, W, D]``.

    The pooling of :func:`mlmtool.analysis.embed.word_vectors` (mean of the pieces), for
    several layers at once, as one matrix product with a ``[W, S]`` averaging matrix (built
    without a loop over words).
    """
    import numpy as np

    avg = np.zeros((len(groups), hidden.shape[1]), dtype=np.float32)
    if groups:
        sizes = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
        avg[np.repeat(np.arange(len(groups)), sizes), np.concatenate(groups)] = np.repeat(1.0 / sizes, sizes)
    pooled = avg @ hidden  # [layers, W, D]
    norms = np.linalg.norm(pooled, axis=-1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)


def embed_sentences(lm, sentences: Sequence[Sentence], layers: Sequence[int], batch_size: int = 32):
    """Word vectors and word rows of some sentences, through the forward core.

    Args:
        lm: a :class:`~mlmtool.models.LoadedModel`.
        sentences: the sentences (empty ones give no words).
        layers: hidden-state layers (0 = embeddings, ``L`` = output of layer ``L``).
        batch_size: sentences per forward pass (bucketed by length, :func:`~mlmtool.core.forward.iter_forward`).

    Returns:
        ``(vectors, rows, truncated)``: ``vectors`` ``float16 [len(layers), W, D]`` (unit
        length), ``rows`` a dict of ``[W]`` columns (sentence, word_index, word, start, end,
        upos, relation) in text order, and the number of cut sentences.
    """
    import numpy as np

    sentences = [s for s in sentences if s.text.strip()]
    enc = encode_sentences(lm, sentences)
    per: list = [None] * len(sentences)
    if sentences:
        for f in iter_forward(lm, enc.ids, hidden_states=True, hidden_layers=list(layers), batch_size=batch_size):
            per[f.index] = pool_words(f.hidden_states, enc.groups[f.index]).astype(np.float16)
    d = lm.model.config.hidden_size
    mats = [p for p in per if p is not None and p.shape[1]]
    vectors = np.concatenate(mats, axis=1) if mats else np.zeros((len(layers), 0, d), np.float16)
    rows: dict[str, list] = {k: [] for k in ("sentence", "word_index", "word", "start", "end", "upos", "relation")}
    for i, s in enumerate(sentences):
        n = len(enc.words[i])
        rows["sentence"] += [s.number] * n
        rows["word_index"] += enc.index[i]
        rows["word"] += enc.words[i]
        rows["start"] += [a for a, _ in enc.spans[i]]
        rows["end"] += [b for _, b in enc.spans[i]]
        rows["upos"] += list(s.upos) if s.upos is not None else [None] * n
        rows["relation"] += list(s.relation) if s.relation is not None else [None] * n
    return vectors, rows, enc.truncated


# --- the build ------------------------------------------------------------------------------------

def check_layers(lm, layers: Sequence[int] | None) -> list[int]:
    """The layers to index, sorted and unique; None = the last layer.

    Raises:
        MlmtoolError: a layer outside 0..L.
    """
    chosen = sorted(set(layers)) if layers else [lm.num_layers]
    bad = [x for x in chosen if not 0 <= x <= lm.num_layers]
    if bad:
        raise MlmtoolError(f"layer {bad[0]} does not exist: '{lm.name}' has layers 0 (embeddings) to "
                           f"{lm.num_layers}", param="layers")
    return chosen


def open_for_build(lm, output: str | Path, layers: list[int], conllu: bool) -> IndexInfo:
    """The index to extend in ``output``, or a new one (nothing is written yet).

    Raises:
        MlmtoolError: ``output`` is a file, or a non-empty folder that is not an index; an index
            of another model (both named) or other layers; a partial or corrupted index.
    """
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise MlmtoolError(f"-o '{out}' is a file, not an index folder", param="output")
    h = weights_hash(lm)
    if out.is_dir() and (out / MANIFEST).exists():
        info = read_info(out)
        verify_files(info)
        if info.model_hash != h:
            raise MlmtoolError(f"'{out}' is an index of model '{info.model}', not of '{lm.name}' (other "
                               "weights); use the same model or another folder", param="model")
        if info.layers != layers or info.conllu != conllu:
            raise MlmtoolError(f"'{out}' indexes layers {','.join(map(str, info.layers))}"
                               f"{' of a treebank' if info.conllu else ''}; extend it with the same settings "
                               "or build another folder")
        return info
    if out.is_dir() and any(p.name != WORK for p in out.iterdir()):
        raise MlmtoolError(f"-o '{out}' is a folder with files that is not an mlmtool index; choose an "
                           "empty or new folder", param="output")
    return IndexInfo(path=str(out), model=lm.name, model_hash=h, hidden_size=lm.model.config.hidden_size,
                     layers=layers, conllu=conllu)


def _work_dir(info: IndexInfo, total_hash: str, chunk_lines: int) -> Path:
    """``.building/`` for this build: reused when an interrupted build had the same settings,
    else emptied (it only ever holds chunks of a build that never committed)."""
    work = Path(info.path) / WORK
    state = {"start": info.lines, "corpus_sha256": total_hash, "layers": info.layers,
             "model_hash": info.model_hash, "chunk_lines": chunk_lines}
    old = work / "state.json"
    if work.is_dir() and not (old.is_file() and json.loads(old.read_text()) == state):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "state.json").write_text(json.dumps(state))
    return work


def _chunks(sentences: Iterator[Sentence], size: int) -> Iterator[list[Sentence]]:
    """Consecutive runs of ``size`` sentences."""
    chunk: list[Sentence] = []
    for s in sentences:
        chunk.append(s)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_chunk(path: Path, vectors, rows: dict, truncated: int, chunk: list[Sentence]) -> None:
    """One chunk file (``.npz``: ``vectors`` float16 ``[layers, W, D]``, the row columns as
    arrays, ``truncated``, the sentences' numbers and texts), written under a temporary name
    and renamed (atomic)."""
    import numpy as np

    with_words = sorted(set(rows["sentence"]))
    texts = {s.number: s.text for s in chunk}

    arrays = {f"row_{k}": np.array(["" if x is None else x for x in v] if k in ("word", "upos", "relation")
                                   else v, dtype=str if k in ("word", "upos", "relation") else np.int64)
              for k, v in rows.items()}
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, vectors=vectors, truncated=np.array(truncated), **arrays,
                 sent_number=np.array(with_words, dtype=np.int64),
                 sent_text=np.array([texts[n] for n in with_words], dtype=str))
    os.replace(tmp, path)


def build_index(lm, corpus: str | Path | None, output: str | Path, layers: Sequence[int] | None = None, *,
                conllu: str | Path | None = None, batch_size: int = 32, progress: bool = False,
                chunk_lines: int | None = None) -> IndexInfo:
    """Index a corpus's words by their contextual vectors, or extend an index with new lines.

    Streams the corpus in chunks of ``chunk_lines`` lines through the forward core; a
    chunk is kept in ``OUTPUT/.building/`` once computed, so an interrupted build (Ctrl-C)
    resumes where it stopped (a worker thread writes each chunk while the model runs on the
    next); at the end each layer's IVF index is filled from the chunks. Re-running on a corpus whose first lines
    are those already indexed appends the new lines. Vectors: mean of a word's pieces
    (``mlmtool embed``'s rule), L2-normalised, float16; per layer a faiss inverted-file
    index (cosine; :func:`~.merge.new_layer`).

    Under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1), every process calls this
    with the same arguments: each computes its share of the chunks and rank 0 merges them
    (:mod:`.shard`); every rank returns the merged index's manifest.

    Args:
        lm: a :class:`~mlmtool.models.LoadedModel`.
        corpus: UTF-8 text, one sentence per line (sentence number = line number from 0).
        output: the index folder (new, empty, or an index of the same model and layers).
        layers: hidden-state layers to index (1..L, 0 = embeddings); default the last.
        conllu: a CoNLL-U treebank instead of ``corpus``: its words, UPOS and relations.
        batch_size: sentences per forward pass (default 32).
        progress: show a tqdm bar (words/s) on stderr (rank 0's words in a launch).
        chunk_lines: lines per chunk, the unit of resuming, of memory and of a launch's
            sharing out (default :func:`chunk_lines_for`: 2,048 for one layer at hidden 384).

    Returns:
        The :class:`~.store.IndexInfo` written to ``OUTPUT/manifest.json``.

    Raises:
        MlmtoolError: an empty, binary or non-UTF-8 corpus; a corpus whose first lines differ
            from those indexed; and the refusals of :func:`open_for_build`. Nothing is deleted.
    """
    if (corpus is None) == (conllu is None):
        raise MlmtoolError("give a corpus file or --conllu FILE (one of them)", param="conllu")
    if chunk_lines is not None and chunk_lines < 1:
        raise MlmtoolError("chunk_lines must be at least 1", param="chunk_lines")
    layers = check_layers(lm, layers)
    chunk_lines = chunk_lines or chunk_lines_for(len(layers), lm.model.config.hidden_size)
    info = open_for_build(lm, output, layers, conllu is not None)
    total, full, source = _open_corpus(corpus, conllu, info, output)
    if total == info.lines:
        return info
    with shard_group() as shard:
        if shard.size == 1:
            return _build_here(lm, info, source, total, full, layers, batch_size, progress, chunk_lines)
        return _build_sharded(lm, info, source, total, full, shard, layers, batch_size, progress, chunk_lines)


def _open_corpus(corpus, conllu, info: IndexInfo, output) -> tuple[int, str, Iterator[Sentence]]:
    """``(lines, sha256 of all lines, the sentences after those indexed)`` of the corpus.

    Raises:
        MlmtoolError: a bad corpus (:func:`scan_text`, :func:`read_treebank`), or one whose
            first lines are not those indexed.
    """
    if conllu is not None:
        tree = read_treebank(conllu)
        total, prefix = len(tree), treebank_hash(tree[:info.lines])
        full, source = treebank_hash(tree), iter(tree[info.lines:])
    else:
        total, prefix, full = scan_text(corpus, info.lines)
        source = iter_text(corpus, info.lines)
    if info.lines and (total < info.lines or prefix != info.corpus_sha256):
        raise MlmtoolError(f"the first {info.lines} lines of the corpus are not those indexed in "
                           f"'{output}'; only appending lines is supported: build another folder")
    return total, full, source


def _build_here(lm, info, source, total, full, layers, batch_size, progress, chunk_lines) -> IndexInfo:
    """The single-process build: chunks computed and written in turn, then the layers filled."""
    work = _work_dir(info, full, chunk_lines)
    writer = LayerWriter(info)
    try:
        _run_chunks(lm, source, work, layers, batch_size, progress, chunk_lines, Shard(), writer)
        writer.wait()
    finally:
        writer.close()
    return commit(info, work, writer, total, full)


def _build_sharded(lm, info, source, total, full, shard: Shard, layers, batch_size, progress,
                   chunk_lines) -> IndexInfo:
    """One rank of a launched build: its chunks, a barrier, rank 0 merges, a barrier."""
    if shard.rank == 0:
        _work_dir(info, full, chunk_lines)
    shard.barrier()  # the chunk folder is ready
    work = Path(info.path) / WORK
    _run_chunks(lm, source, work, layers, batch_size, progress and shard.rank == 0, chunk_lines, shard, None)
    shard.barrier()  # every chunk is written
    if shard.rank == 0:
        writer = LayerWriter(info)
        try:
            commit(info, work, writer, total, full)
        finally:
            writer.close()
    shard.barrier()  # the manifest is replaced
    return read_info(info.path)


def _run_chunks(lm, source: Iterator[Sentence], work: Path, layers, batch_size: int, progress: bool,
                chunk_lines: int, shard: Shard, writer: LayerWriter | None) -> None:
    """Embed this rank's chunks not yet in ``work`` and write them there (:func:`write_chunk`),
    in ``writer``'s worker thread while the model runs on the next chunk (here without one)."""
    from tqdm.auto import tqdm

    bar = tqdm(unit=" words", unit_scale=True, disable=not progress, desc="index", dynamic_ncols=True)
    try:
        for number, chunk in enumerate(_chunks(source, chunk_lines)):
            if not shard.owns(number):
                continue
            path = work / f"chunk-{chunk[0].number:010d}.npz"
            if path.exists():  # written by an interrupted build
                continue
            vectors, rows, truncated = embed_sentences(lm, chunk, layers, batch_size)
            job = partial(write_chunk, path, vectors, rows, truncated, chunk)
            if writer is None:
                job()
            else:
                writer.submit(job)
            bar.update(len(rows["word"]))
            bar.set_postfix(line=chunk[-1].number + 1, refresh=False)
    finally:
        bar.close()
