"""Turn a build's chunks into a new generation of an index: HNSW layers, word tables, manifest.

The chunk files of ``INDEX_DIR/.building/`` (:func:`~.build.write_chunk`) are the build's
state. :class:`LayerWriter` adds chunk vectors to each layer's usearch HNSW index in corpus
order, in a worker thread, so a single-process build extends the graphs while the model
runs on the next chunk; a multi-process build (:mod:`.shard`) has rank 0 feed it every
rank's chunks after the others finish. :func:`commit` then writes the tables (streamed chunk
by chunk, Parquet) and the layer files and replaces the manifest, the single commit point.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .store import HNSW, IndexInfo, library_versions, restore_layer

#: Word-table columns and their Arrow types (``row_<name>`` arrays of a chunk file).
WORD_COLUMNS = {"sentence": "int32", "word_index": "int32", "word": "string", "start": "int32",
                "end": "int32", "upos": "string", "relation": "string"}


def open_layer(info: IndexInfo, layer: int):
    """A usearch HNSW index to extend: the layer's saved one (read into memory), or a new one
    (cosine, float16, :data:`~.store.HNSW` settings; Malkov & Yashunin 2018).

    Raises:
        MlmtoolError: a damaged layer file (:func:`~.store.restore_layer`).
    """
    from usearch.index import Index

    if str(layer) in info.layer_files:
        return restore_layer(info, layer, view=False)
    dim = info.hidden_size
    return Index(ndim=dim, metric="cos", dtype="f16", connectivity=HNSW["connectivity"],
                 expansion_add=HNSW["expansion_add"], expansion_search=HNSW["expansion_search"])


class LayerWriter:
    """Each indexed layer's HNSW index of this build, extended chunk by chunk in a worker thread.

    Jobs run in submission order on one thread, and :meth:`submit` waits for the previous
    job first, so at most one chunk waits in memory besides the one being computed. Keys
    continue from the words already indexed (key = row of the word table).

    Args:
        info: the index being extended (its layer files, word count, hidden size).

    Raises:
        MlmtoolError: a damaged layer file of ``info``.
    """

    def __init__(self, info: IndexInfo):
        self.indexes = [open_layer(info, layer) for layer in info.layers]
        self.next_key = info.words
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer")
        self._pending: Future | None = None

    def add(self, vectors) -> None:
        """Add ``float16 [layers, W, D]`` vectors (one chunk) with the next ``W`` keys."""
        import numpy as np

        n = vectors.shape[1]
        if n:
            keys = np.arange(self.next_key, self.next_key + n, dtype=np.uint64)
            for index, layer_vectors in zip(self.indexes, vectors):
                index.add(keys, layer_vectors)
        self.next_key += n

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` (e.g. write a chunk, then :meth:`add` it) on the worker, after the previous one.

        Raises:
            Exception: whatever the previous job raised.
        """
        self.wait()
        self._pending = self._pool.submit(job)

    def wait(self) -> None:
        """Wait for the submitted job; re-raise its exception."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Finish the running job (a chunk being written is completed) and stop the worker."""
        self._pool.shutdown(wait=True)

    def save(self, folder: Path, layers: list[int], generation: int) -> dict[str, str]:
        """Write each layer's index as ``layer-NN.gGGGG.usearch`` (temporary name + rename).

        Returns:
            Layer number (as a string) → file name.
        """
        self.wait()
        names = {}
        for layer, index in zip(layers, self.indexes):
            name = f"layer-{layer:02d}.g{generation:04d}.usearch"
            tmp = folder / (name + ".tmp")
            index.save(str(tmp))
            os.replace(tmp, folder / name)
            names[str(layer)] = name
        return names


def write_tables(folder: Path, generation: int, chunks: list[Path]) -> dict:
    """Write this generation's word table and sentence table (Parquet), one chunk at a time.

    Returns:
        ``{"words", "sentences", "truncated", "words_file", "sentences_file"}``; no file is
        written when the chunks hold no word.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    words_file, sentences_file = f"words-g{generation:04d}.parquet", f"sentences-g{generation:04d}.parquet"
    out = {"words": 0, "sentences": 0, "truncated": 0, "words_file": words_file, "sentences_file": sentences_file}
    word_schema = pa.schema([(k, getattr(pa, t)()) for k, t in WORD_COLUMNS.items()])
    text_schema = pa.schema([("sentence", pa.int32()), ("text", pa.string())])
    writers = None
    try:
        for c in chunks:
            with np.load(c) as data:
                out["truncated"] += int(data["truncated"])
                if not len(data["row_word"]):
                    continue
                words = pa.Table.from_arrays([_column(data[f"row_{k}"], t, k in ("upos", "relation"))
                                              for k, t in WORD_COLUMNS.items()], schema=word_schema)
                texts = pa.Table.from_arrays([_column(data["sent_number"], "int32"),
                                              _column(data["sent_text"], "string")], schema=text_schema)
            if writers is None:
                writers = (pq.ParquetWriter(folder / words_file, word_schema),
                           pq.ParquetWriter(folder / sentences_file, text_schema))
            writers[0].write_table(words)
            writers[1].write_table(texts)
            out["words"] += words.num_rows
            out["sentences"] += texts.num_rows
    finally:
        for w in writers or ():
            w.close()
    return out


def _column(values, kind: str, nullable: bool = False):
    """A chunk's NumPy column as an Arrow array; with ``nullable``, empty strings → null
    (the ``upos``/``relation`` of plain text)."""
    import numpy as np
    import pyarrow as pa

    if kind == "int32":
        return pa.array(values.astype(np.int32), pa.int32())
    strings = values.tolist()
    return pa.array(strings, pa.string(), mask=np.array([s == "" for s in strings], dtype=bool) if nullable else None)


def commit(info: IndexInfo, work: Path, writer: LayerWriter, total: int, full_hash: str) -> IndexInfo:
    """Write a new generation from the chunks of ``work`` (vectors already in ``writer``),
    replace the manifest, then remove the previous generation's layer files and ``work``.

    Args:
        info: the index before this build. work: the chunk folder. writer: the extended
            layers. total: corpus lines now indexed. full_hash: SHA-256 of those lines.

    Returns:
        The new :class:`~.store.IndexInfo` (saved as the manifest).
    """
    folder, gen = Path(info.path), info.generation + 1
    added = write_tables(folder, gen, sorted(work.glob("chunk-*.npz")))
    new = dict(info.__dict__, generation=gen, lines=total, corpus_sha256=full_hash, versions=library_versions(),
               layer_files=writer.save(folder, info.layers, gen), tables=list(info.tables),
               words=info.words + added["words"], sentences=info.sentences + added["sentences"],
               truncated=info.truncated + added["truncated"])
    if added["words"]:
        new["tables"].append([added["words_file"], added["sentences_file"]])
    result = IndexInfo(**new)
    result.save()
    for layer, old in info.layer_files.items():
        if old != result.layer_files[layer]:
            (folder / old).unlink(missing_ok=True)
    shutil.rmtree(work)
    return result
