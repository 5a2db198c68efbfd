"""Build (or extend) a corpus index: one L2-normalised float16 vector per word per layer.

A word's vector is the mean of its pieces' hidden states, the rule of ``mlmtool embed``
(:mod:`mlmtool.analysis.embed`; words are the tokenizer's, :func:`mlmtool.tokens.word_ids_of`,
or a treebank's with ``conllu``). The corpus streams through in chunks of lines: each chunk's
vectors and word rows are written to ``INDEX_DIR/.building/`` as soon as they are computed,
so memory stays at one chunk (plus the HNSW graph being extended) and a build stopped by
Ctrl-C resumes from its last chunk. When every chunk is there, :func:`_commit` adds them to
each layer's usearch HNSW index and replaces the manifest (:mod:`.store`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

from ...core.forward import iter_forward
from ...errors import MlmtoolError
from ...tokens import encode_words, word_ids_of, word_pieces, word_strings
from .store import HNSW, MANIFEST, WORK, IndexInfo, library_versions, read_info, weights_hash

#: Corpus lines per chunk (the unit of resuming and of the memory bound).
CHUNK_LINES = 512


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


def encode_sentences(lm, sentences: Sequence[Sentence]) -> Encoded:
    """Tokenize sentences with at least one character of text; too long ones are cut.

    A sentence longer than ``lm.max_length`` keeps its first ``max_length - 1`` tokens and
    its final special token; a word with a piece cut off is left out.
    """
    tok = lm.tokenizer
    if sentences and sentences[0].words is not None:
        ids, wids = encode_words(lm, [s.words for s in sentences], [s.space_after for s in sentences])
        words = [list(s.words) for s in sentences]
    else:
        enc = tok([s.text for s in sentences], add_special_tokens=True, truncation=False, verbose=False)
        ids = [list(x) for x in enc["input_ids"]]
        wids = [word_ids_of(enc, i, tok) for i in range(len(sentences))]
        words = [word_strings(s.text, enc, i, tok) for i, s in enumerate(sentences)]
    out = Encoded([], [], [], [], [], 0)
    for s, row, wid, ws in zip(sentences, ids, wids, words):
        groups = word_pieces(wid)
        present = sorted({w for w in wid if w is not None})  # a word may get no piece
        if len(row) > lm.max_length:
            row = row[:lm.max_length - 1] + row[-1:]
            out = out._replace(truncated=out.truncated + 1)
        keep = [k for k, g in enumerate(groups) if g[-1] < len(row) - 1]
        spans = _spans(s.text, ws)
        out.ids.append(row)
        out.groups.append([groups[k] for k in keep])
        out.index.append([present[k] for k in keep])
        out.words.append([ws[present[k]] for k in keep])
        out.spans.append([spans[present[k]] for k in keep])
    return out


def pool_words(hidden, groups: list[list[int]]):
    """Mean of each word's pieces, L2-normalised: ``[layers, S, D]`` → ``float32 [layers, W, D]``.

    The pooling of :func:`mlmtool.analysis.embed.word_vectors` (mean of the pieces), for
    several layers at once, as one matrix product with a ``[W, S]`` averaging matrix.
    """
    import numpy as np

    avg = np.zeros((len(groups), hidden.shape[1]), dtype=np.float32)
    for w, g in enumerate(groups):
        avg[w, g] = 1.0 / len(g)
    pooled = np.einsum("ws,lsd->lwd", avg, hidden)
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
        for f in iter_forward(lm, enc.ids, hidden_states=True, batch_size=batch_size):
            per[f.index] = pool_words(f.hidden_states[list(layers)], enc.groups[f.index])
    d = lm.model.config.hidden_size
    mats = [p for p in per if p is not None and p.shape[1]]
    vectors = np.concatenate(mats, axis=1) if mats else np.zeros((len(layers), 0, d), np.float32)
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
    return vectors.astype(np.float16), rows, enc.truncated


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


def _work_dir(info: IndexInfo, start: int, total_hash: str) -> Path:
    """``.building/`` for this build: reused when an interrupted build had the same settings,
    else emptied (it only ever holds chunks of a build that never committed)."""
    work = Path(info.path) / WORK
    state = {"start": info.lines, "corpus_sha256": total_hash, "layers": info.layers,
             "model_hash": info.model_hash, "chunk_lines": CHUNK_LINES, "from": start}
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


def _write_chunk(path: Path, vectors, rows: dict, truncated: int, chunk: list[Sentence]) -> None:
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
                conllu: str | Path | None = None, batch_size: int = 32, progress: bool = False) -> IndexInfo:
    """Index a corpus's words by their contextual vectors, or extend an index with new lines.

    Streams the corpus in chunks of :data:`CHUNK_LINES` lines through the forward core; a
    chunk is kept in ``OUTPUT/.building/`` once computed, so an interrupted build (Ctrl-C)
    resumes where it stopped. Re-running on a corpus whose first lines are those already
    indexed appends the new lines. Vectors: mean of a word's pieces (``mlmtool embed``'s rule),
    L2-normalised, float16; per layer a usearch HNSW index (cosine; Malkov & Yashunin 2018).

    Args:
        lm: a :class:`~mlmtool.models.LoadedModel`.
        corpus: UTF-8 text, one sentence per line (sentence number = line number from 0).
        output: the index folder (new, empty, or an index of the same model and layers).
        layers: hidden-state layers to index (1..L, 0 = embeddings); default the last.
        conllu: a CoNLL-U treebank instead of ``corpus``: its words, UPOS and relations.
        batch_size: sentences per forward pass (default 32).
        progress: show a tqdm bar (words/s) on stderr.

    Returns:
        The :class:`~.store.IndexInfo` written to ``OUTPUT/manifest.json``.

    Raises:
        MlmtoolError: an empty, binary or non-UTF-8 corpus; a corpus whose first lines differ
            from those indexed; and the refusals of :func:`open_for_build`. Nothing is deleted.
    """
    if (corpus is None) == (conllu is None):
        raise MlmtoolError("give a corpus file or --conllu FILE (one of them)", param="conllu")
    layers = check_layers(lm, layers)
    info = open_for_build(lm, output, layers, conllu is not None)
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
    if total == info.lines:
        return info
    work = _work_dir(info, info.lines, full)
    _run_chunks(lm, source, work, layers, batch_size, progress)
    return _commit(info, work, total, full)


def _run_chunks(lm, source: Iterator[Sentence], work: Path, layers, batch_size: int, progress: bool) -> None:
    """Embed each chunk not yet in ``work`` and write it there (:func:`_write_chunk`)."""
    from tqdm.auto import tqdm

    bar = tqdm(unit=" words", unit_scale=True, disable=not progress, desc="index", dynamic_ncols=True)
    try:
        for chunk in _chunks(source, CHUNK_LINES):
            path = work / f"chunk-{chunk[0].number:010d}.npz"
            if path.exists():
                continue
            vectors, rows, truncated = embed_sentences(lm, chunk, layers, batch_size)
            _write_chunk(path, vectors, rows, truncated, chunk)
            bar.update(len(rows["word"]))
            bar.set_postfix(line=chunk[-1].number + 1, refresh=False)
    finally:
        bar.close()


def _commit(info: IndexInfo, work: Path, total: int, full_hash: str) -> IndexInfo:
    """Add the chunks of ``work`` to a new generation of the index, replace the manifest,
    then remove the previous generation's layer files and ``work``."""
    import numpy as np

    folder, gen = Path(info.path), info.generation + 1
    chunks = sorted(work.glob("chunk-*.npz"))
    new = dict(info.__dict__, generation=gen, lines=total, corpus_sha256=full_hash,
               versions=library_versions(), layer_files=dict(info.layer_files), tables=list(info.tables))
    added = _write_tables(folder, gen, chunks)
    for j, layer in enumerate(info.layers):
        name = f"layer-{layer:02d}.g{gen:04d}.usearch"
        _extend_layer(folder, info.layer_files.get(str(layer)), name, chunks, j, info.words,
                      info.hidden_size)
        new["layer_files"][str(layer)] = name
    if added["words"]:
        new["tables"].append([added["words_file"], added["sentences_file"]])
    new.update(words=info.words + added["words"], sentences=info.sentences + added["sentences"],
               truncated=info.truncated + int(sum(int(np.load(c)["truncated"]) for c in chunks)))
    result = IndexInfo(**new)
    result.save()
    for layer, old in info.layer_files.items():
        if old != result.layer_files[layer]:
            (folder / old).unlink(missing_ok=True)
    shutil.rmtree(work)
    return result


def _extend_layer(folder: Path, old: str | None, name: str, chunks: list[Path], j: int, first_key: int,
                  dim: int) -> None:
    """Write ``name``: the layer's HNSW index (``old``, or a new one) plus every chunk's vectors
    of layer position ``j``, keys continuing from ``first_key``."""
    import numpy as np
    from usearch.index import Index

    if old:
        index = Index.restore(str(folder / old))
    else:
        index = Index(ndim=dim, metric="cos", dtype="f16", connectivity=HNSW["connectivity"],
                      expansion_add=HNSW["expansion_add"], expansion_search=HNSW["expansion_search"])
    key = first_key
    for c in chunks:
        vectors = np.load(c)["vectors"][j]  # float16 [W, D]
        if len(vectors):
            index.add(np.arange(key, key + len(vectors), dtype=np.uint64), vectors)
            key += len(vectors)
    tmp = folder / (name + ".tmp")
    index.save(str(tmp))
    os.replace(tmp, folder / name)


def _write_tables(folder: Path, gen: int, chunks: list[Path]) -> dict:
    """Write this generation's word table and sentence table (Parquet) from the chunks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, list] = {}
    for c in chunks:
        with np.load(c) as data:
            for k in data.files:
                if k.startswith(("row_", "sent_")):
                    cols.setdefault(k[4:] if k.startswith("row_") else k, []).append(data[k])
    merged = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    n = len(merged.get("word", []))
    table = pa.table({
        "sentence": pa.array(merged["sentence"], pa.int32()), "word_index": pa.array(merged["word_index"], pa.int32()),
        "word": pa.array(merged["word"].tolist(), pa.string()),
        "start": pa.array(merged["start"], pa.int32()), "end": pa.array(merged["end"], pa.int32()),
        "upos": pa.array([u or None for u in merged["upos"].tolist()], pa.string()),
        "relation": pa.array([r or None for r in merged["relation"].tolist()], pa.string())}) if n else None
    words_file, sentences_file = f"words-g{gen:04d}.parquet", f"sentences-g{gen:04d}.parquet"
    if table is None:
        return {"words": 0, "sentences": 0, "words_file": words_file, "sentences_file": sentences_file}
    pq.write_table(table, folder / words_file)
    texts = pa.table({"sentence": pa.array(merged["sent_number"], pa.int32()),
                      "text": pa.array(merged["sent_text"].tolist(), pa.string())})
    pq.write_table(texts, folder / sentences_file)
    return {"words": n, "sentences": texts.num_rows, "words_file": words_file, "sentences_file": sentences_file}
