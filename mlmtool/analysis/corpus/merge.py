"""Turn a build's chunks into a new generation of an index: IVF layers, word tables, manifest.

The chunk files of ``INDEX_DIR/.building/`` (:func:`~.build.write_chunk`) are the build's
state; a worker thread of :class:`LayerWriter` writes them while the model runs on the next
chunk. When every chunk is there (from one process, or from every rank of a launch,
:mod:`.shard`), :func:`commit` has the writer learn a new index's inverted lists from a
sample of the whole build and fill each layer's lists from the chunks in corpus order, then
writes the tables (streamed chunk by chunk, Parquet) and the layer files and replaces the
manifest, the single commit point.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .store import IndexInfo, ivf_settings, library_versions, restore_layer, stored_lists

#: Word-table columns and their Arrow types (``row_<name>`` arrays of a chunk file).
WORD_COLUMNS = {"sentence": "int32", "word_index": "int32", "word": "string", "start": "int32",
                "end": "int32", "upos": "string", "relation": "string"}

#: k-means iterations when the lists are learnt (faiss's ``Clustering`` default).
KMEANS_ITERATIONS = 25

#: Seed of the training sample and of k-means: the same chunks give the same lists.
SEED = 1234

#: An index extended to this many times the words its lists were learnt from learns new lists
#: (its lists would otherwise grow ever longer, and each query with them): at 4x, a list holds
#: at most about twice the words :func:`~.store.ivf_settings` would give it.
REFIT_GROWTH = 4


def new_layer(dim: int, nlist: int):
    """An empty, untrained faiss inverted-file index of ``dim``-wide float16 vectors.

    ``IndexIVFScalarQuantizer`` with ``QT_fp16`` codes and ``by_residual = False``: each list
    stores the vectors themselves in float16 (2 ``D`` bytes + an 8-byte id per word), so a
    search's scores are the exact inner products of the stored vectors, which for unit
    vectors are cosines. The coarse quantizer is a flat inner-product index of ``nlist``
    k-means centroids (Jégou, Douze & Schmid 2011, "Product quantization for nearest
    neighbor search", the inverted file without the product quantizer).
    """
    import faiss

    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT)
    index.by_residual = False
    index.cp.min_points_per_centroid = 1  # the sample size is ours (ivf_settings); no warnings
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.seed = SEED
    return index


def _picked(index, ids):
    """The stored vectors of ``ids`` (sorted) in an IVF layer: ``float32 [len(ids), D]``, in
    the order of ``ids`` (gathered list by list with :func:`~.store.stored_lists`)."""
    import numpy as np

    out = np.empty((len(ids), index.d), np.float32)
    for list_ids, vectors in stored_lists(index):
        where = np.searchsorted(ids, list_ids)
        hit = (where < len(ids)) & (ids[np.minimum(where, len(ids) - 1)] == list_ids)
        out[where[hit]] = vectors[hit]
    return out


def chunk_words(path: Path) -> int:
    """The number of words (vectors per layer) in a chunk file."""
    import numpy as np

    with np.load(path) as data:
        return int(data["row_sentence"].shape[0])


class LayerWriter:
    """Writes a build's chunk files in a worker thread, then each layer's IVF index from them.

    Jobs run in submission order on one thread, and :meth:`submit` waits for the previous
    job first, so at most one chunk waits in memory besides the one being computed.

    :meth:`fill` adds the chunks' vectors to each layer's index in corpus order (id = row of
    the word table, continuing from the words already indexed). A new index first learns its
    lists: :func:`~.store.ivf_settings` of the build's word count, k-means on a seeded
    uniform sample of all the chunks (so a corpus ordered by topic or language gets lists for
    all of it, not for its first part). An index being extended keeps its lists and settings
    (``info.ivf``) until it has grown :data:`REFIT_GROWTH` times, then learns new ones. The
    lists are filled after the forward passes, with faiss's threads on every core: a worker
    beside the model would take one of its two cores on a small machine.

    Args:
        info: the index being extended (its layer files, word count, hidden size, settings).

    Attributes:
        ivf: the IVF settings of the layers (for the manifest).

    Raises:
        MlmtoolError: a damaged layer file of ``info``.
    """

    def __init__(self, info: IndexInfo):
        self.info = info
        self.ivf = dict(info.ivf)
        self.indexes = ([restore_layer(info, layer, view=False) for layer in info.layers]
                        if info.layer_files else None)
        self.next_key = info.words
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer")
        self._pending: Future | None = None

    def fill(self, chunks: list[Path]) -> None:
        """Add the vectors of ``chunks`` (chunk files, in corpus order). A new index learns its
        lists from a sample of them first; an index that has grown :data:`REFIT_GROWTH` times
        past the words its lists were learnt from learns new ones from a sample of its words
        and the chunks', and its words move to them (same ids, same float16 values)."""
        import numpy as np

        counts = [chunk_words(p) for p in chunks]
        old = self.indexes
        if old is None or self._outgrown(sum(counts)):
            self._train(chunks, counts, old)
            if old is not None:
                self._move(old)
        for path in chunks:
            with np.load(path) as data:
                self.add(data["vectors"])

    def _outgrown(self, new: int) -> bool:
        """True when ``new`` words make the index :data:`REFIT_GROWTH` times the words its
        lists were learnt from (``ivf["words"]``) and the rule would give it more lists."""
        learnt = self.ivf.get("words") or (2 * self.ivf.get("nlist", 1)) ** 2
        total = self.info.words + new
        return total >= REFIT_GROWTH * learnt and ivf_settings(total)["nlist"] > self.ivf.get("nlist", 0)

    def _train(self, chunks: list[Path], counts: list[int], old=None) -> None:
        """k-means of each layer on ``ivf["train"]`` vectors drawn uniformly (seeded) from all
        the words: those of ``old`` (the indexed ones, decoded) and those of the chunks."""
        import numpy as np

        before = self.info.words if old is not None else 0
        total = before + sum(counts)
        picked = np.sort(np.random.default_rng(SEED).choice(total, size=min(total, ivf_settings(total)["train"]),
                                                            replace=False))
        parts = []
        if old is not None and (picked < before).any():
            parts.append(np.stack([_picked(index, picked[picked < before]) for index in old]))  # [layers, t, D]
        start = before
        for path, n in zip(chunks, counts):
            mine = picked[(picked >= start) & (picked < start + n)] - start
            if len(mine):
                with np.load(path) as data:
                    parts.append(data["vectors"][:, mine].astype(np.float32))  # [layers, t, D]
            start += n
        self.learn(np.concatenate(parts, axis=1) if parts else None, total)

    def _move(self, old) -> None:
        """Add the words of the ``old`` layers (their ids and stored values) to the new lists,
        one old list at a time."""
        import numpy as np

        for new_index, old_index in zip(self.indexes, old):
            for ids, vectors in stored_lists(old_index):
                new_index.add_with_ids(vectors.astype(np.float32), ids)

    def learn(self, sample, total: int) -> None:
        """Make each layer's lists: :func:`~.store.ivf_settings` of ``total`` words, k-means on
        ``sample`` (``float32 [layers, t, D]``, ``t`` ≥ ``nlist``; None when there are no words)."""
        import numpy as np

        dim = self.info.hidden_size
        self.ivf = ivf_settings(total)
        self.indexes = []
        for k in range(len(self.info.layers)):
            index = new_layer(dim, self.ivf["nlist"])
            index.train(np.ascontiguousarray(sample[k]) if sample is not None else np.eye(1, dim, dtype=np.float32))
            self.indexes.append(index)

    def add(self, vectors) -> None:
        """Add ``float16 [layers, W, D]`` vectors to the learnt lists with the next ``W`` ids."""
        import numpy as np

        n = vectors.shape[1]
        if n:
            keys = np.arange(self.next_key, self.next_key + n, dtype=np.int64)
            for index, layer_vectors in zip(self.indexes, vectors):
                index.add_with_ids(layer_vectors.astype(np.float32), keys)
        self.next_key += n

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` (writing a chunk file) on the worker, after the previous one.

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
        """Write each layer's index as ``layer-NN.gGGGG.faiss`` (temporary name + rename), after
        :meth:`fill` (which makes the layers, empty ones for no words).

        Returns:
            Layer number (as a string) → file name.
        """
        import faiss

        self.wait()
        names = {}
        for layer, index in zip(layers, self.indexes):
            name = f"layer-{layer:02d}.g{generation:04d}.faiss"
            tmp = folder / (name + ".tmp")
            faiss.write_index(index, str(tmp))
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
    """Write a new generation from the chunks of ``work`` (their vectors added to ``writer``'s
    layers here), replace the manifest, then remove the previous generation's layer files and ``work``.

    Args:
        info: the index before this build. work: the chunk folder (every chunk of this build).
        writer: the layers (:meth:`LayerWriter.fill` adds the chunks). total: corpus lines now
            indexed. full_hash: SHA-256 of those lines.

    Returns:
        The new :class:`~.store.IndexInfo` (saved as the manifest).
    """
    folder, gen = Path(info.path), info.generation + 1
    chunks = sorted(work.glob("chunk-*.npz"))
    writer.fill(chunks)
    added = write_tables(folder, gen, chunks)
    new = dict(info.__dict__, generation=gen, lines=total, corpus_sha256=full_hash, versions=library_versions(),
               ivf=writer.ivf,
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
