"""The index folder of ``mlmtool index``: its manifest, its word table and one IVF index per layer.

Layout (docs/search.md)::

    INDEX_DIR/manifest.json                 IndexInfo: model + weights hash, layers, counts, versions
    INDEX_DIR/words-g0001.parquet           one row per word: sentence, word_index, word, start, end,
                                            upos, relation (row number = the word's key)
    INDEX_DIR/sentences-g0001.parquet       one row per indexed sentence: sentence, text
    INDEX_DIR/layer-04.g0001.faiss          faiss IVF, float16 vectors (inner product of unit vectors
                                            = cosine), ids = row numbers
    INDEX_DIR/.building/                    chunks of a build in progress (resumable; gone when done)

Each build that adds words writes a new generation (``g0002`` ...) of the layer files and one more
pair of table files, then replaces the manifest (the single commit point, ``os.replace``); a
build stopped at any moment leaves the previous manifest and its files intact.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...errors import MlmtoolError

FORMAT = "mlmtool-index"
MANIFEST = "manifest.json"
WORK = ".building"

#: Manifest versions: 1 = usearch HNSW layer files (mlmtool before the IVF layers), 2 = faiss IVF.
VERSION = 2

#: Inverted lists probed per query (at most the index's lists; recall and speed at 1,000,000
#: words in docs/search.md, from bench_search).
NPROBE = 48

#: Most inverted lists per layer, and training vectors per list (k-means on a uniform sample of
#: the build; faiss asks for at least 39 per centroid).
MAX_LISTS = 4096
TRAIN_PER_LIST = 64


def ivf_settings(words: int) -> dict[str, int]:
    """The IVF settings for a new layer of ``words`` words (those of its first build).

    ``nlist`` = half the square root of the words (1 to :data:`MAX_LISTS`): lists of
    about ``2 sqrt(N)`` words (Jégou, Douze & Schmid 2011; faiss's guidelines start at
    ``sqrt(N)`` lists for millions of vectors, where the scan of the probed lists dominates;
    up to 10 million words fewer, longer lists keep k-means, the one part of the build that
    grows with ``nlist²``, small beside the forward passes, and a query of :data:`NPROBE`
    lists scans ``64 sqrt(N)`` vectors: 64,000 at 1 million, a few ms); ``nprobe`` =
    :data:`NPROBE` (at most ``nlist``); ``train`` = the vectors k-means learns the lists
    from (:data:`TRAIN_PER_LIST` per list, at most the words); ``words`` = ``words``.

    Returns:
        ``{"nlist": int, "nprobe": int, "train": int, "words": int}``.
    """
    nlist = max(1, min(MAX_LISTS, round(math.sqrt(max(1, words)) / 2)))
    return {"nlist": nlist, "nprobe": min(nlist, NPROBE), "train": max(nlist, min(words, TRAIN_PER_LIST * nlist)),
            "words": words}


#: Layers with at most this many words are searched exactly (a NumPy scan of the float16
#: vectors, a few ms); larger ones through the inverted lists (``nprobe`` of them).
EXACT_BELOW = 50_000


@dataclass
class IndexInfo:
    """What an index holds: the manifest (``manifest.json``) as a dataclass.

    Attributes:
        path: the index folder.
        model: the model's name as given to :func:`mlmtool.load` (search loads it from here).
        model_hash: SHA-256 of the encoder's weights (:func:`weights_hash`).
        hidden_size: ``D``, the vectors' width.
        layers: indexed hidden-state layers (1..L; 0 = embeddings).
        lines: corpus lines (or treebank sentences) consumed, counted from the file's start.
        words: words indexed (= vectors per layer = rows of the word table).
        sentences: sentences with at least one word.
        truncated: sentences longer than the model accepts, cut to its maximum length.
        corpus_sha256: SHA-256 of the first ``lines`` lines (an appended corpus must keep them).
        conllu: True when built from a CoNLL-U treebank (UPOS and relation per word).
        generation: how many builds added words.
        tables: ``[(words_file, sentences_file)]`` one pair per generation.
        layer_files: layer number (as a string, JSON keys) → its faiss file.
        versions: library versions at the last build (mlmtool, faiss-cpu, pyarrow, torch, ...).
        ivf: the IVF settings of the layer files (:func:`ivf_settings`: ``nlist``, ``nprobe``,
            ``train``, ``words``), chosen from the words the lists were learnt from (the first
            build's) and kept when the index is extended, until it has grown fourfold
            (:data:`~.merge.REFIT_GROWTH`).
    """

    path: str
    model: str
    model_hash: str
    hidden_size: int
    layers: list[int]
    lines: int = 0
    words: int = 0
    sentences: int = 0
    truncated: int = 0
    corpus_sha256: str = ""
    conllu: bool = False
    generation: int = 0
    tables: list[list[str]] = field(default_factory=list)
    layer_files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    ivf: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready ``dict`` of the manifest (``format`` and ``version`` included)."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    def save(self, path: str | Path | None = None) -> Path:
        """Write :meth:`to_dict` as JSON, atomically (temporary file + ``os.replace``).

        Args:
            path: the file; default ``<self.path>/manifest.json``.

        Returns:
            The path written.
        """
        path = Path(path) if path is not None else Path(self.path) / MANIFEST
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


#: ``{encoder: (fingerprint, hash)}``: a weights hash is computed once per state of the weights.
_HASHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def weights_hash(lm) -> str:
    """SHA-256 (hex) of the encoder's weights: names, shapes and float32 values, in name order.

    Only the encoder (``lm.encoder``) counts: the masked-LM head does not change hidden states.
    The hash is kept per encoder and computed again only when a tensor was replaced or
    changed in place (its storage address or torch's version counter moved), so a server
    answering many searches reads the weights once.
    """
    state = sorted(lm.encoder.state_dict().items())
    fingerprint = tuple((name, t.data_ptr(), t._version, tuple(t.shape)) for name, t in state)
    cached = _HASHES.get(lm.encoder)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    h = hashlib.sha256()
    for name, tensor in state:
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()
    try:
        _HASHES[lm.encoder] = (fingerprint, digest)
    except TypeError:  # an encoder that cannot be weakly referenced: no cache
        pass
    return digest


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose output the index depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("mlmtool", "faiss-cpu", "pyarrow", "numpy", "torch", "transformers", "tokenizers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def read_info(path: str | Path) -> IndexInfo:
    """Read and check an index folder's manifest; every file it names must be there.

    Raises:
        MlmtoolError: no such folder; a folder without a manifest (not an index, or a first
            build that was interrupted: run ``mlmtool index`` again); an unreadable manifest;
            a file the manifest names is missing (partial or corrupted). Nothing is deleted.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise MlmtoolError(f"no index folder '{folder}'")
    manifest = folder / MANIFEST
    if not manifest.is_file():
        hint = ("a first build was interrupted; run the same `mlmtool index` command again to finish it"
                if (folder / WORK).is_dir() else "build one with `mlmtool index CORPUS -o DIR`")
        raise MlmtoolError(f"'{folder}' is not an mlmtool index (no {MANIFEST}); {hint}")
    version = None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if data.pop("format", None) != FORMAT:
            raise ValueError("not an mlmtool index manifest")
        version = data.pop("version", None)
        if version == VERSION:
            data["path"] = str(folder)
            info = IndexInfo(**data)
    except (ValueError, TypeError, AttributeError) as exc:
        raise MlmtoolError(f"'{folder}' holds a corrupted index ({MANIFEST}: {exc}); nothing was "
                           "changed: rebuild it into another folder") from None
    if version != VERSION:
        raise MlmtoolError(f"'{folder}' is an index of format version {version}; this mlmtool reads version "
                           f"{VERSION} (faiss IVF layers): rebuild it into another folder with `mlmtool index`")
    missing = [n for pair in info.tables for n in pair] + list(info.layer_files.values())
    missing = [n for n in missing if not (folder / n).is_file()]
    if missing:
        raise MlmtoolError(f"'{folder}' is a partial or corrupted index ({missing[0]} is missing); "
                           "nothing was changed: rebuild it into another folder")
    return info


def _damaged(folder: Path, name: str, why: str) -> MlmtoolError:
    """The one-line refusal of a damaged index file."""
    return MlmtoolError(f"'{folder}' is a corrupted index ({name}: {why}); nothing was changed: rebuild it "
                        "into another folder")


def restore_layer(info: IndexInfo, layer: int, view: bool = True):
    """Open the faiss IVF file of ``layer`` (memory-mapped with ``view``; else read, to extend),
    with ``nprobe`` from the manifest.

    Raises:
        MlmtoolError: the file is unreadable, truncated, not an IVF index, or holds another
            number of vectors than the manifest's word count. Nothing is changed.
    """
    import faiss

    folder, name = Path(info.path), info.layer_files[str(layer)]
    try:
        index = faiss.read_index(str(folder / name), faiss.IO_FLAG_MMAP if view else 0)
    except (RuntimeError, ValueError, OSError) as exc:
        raise _damaged(folder, name, str(exc).strip().splitlines()[-1][:200]) from None
    if not isinstance(index, faiss.IndexIVF):
        raise _damaged(folder, name, "not an IVF index")
    if index.ntotal != info.words:
        raise _damaged(folder, name, f"{index.ntotal} vectors where the manifest counts {info.words} words")
    index.nprobe = min(index.nlist, info.ivf.get("nprobe", NPROBE))
    return index


def verify_files(info: IndexInfo) -> None:
    """Check every file of an index opens: each table's Parquet footer, each layer's IVF file
    (memory-mapped, so cheap however large). Run before an index is extended.

    Raises:
        MlmtoolError: a damaged file (named). Nothing is changed.
    """
    import pyarrow.parquet as pq

    folder = Path(info.path)
    for name in (n for pair in info.tables for n in pair):
        try:
            pq.read_metadata(folder / name)
        except (OSError, ValueError) as exc:
            raise _damaged(folder, name, str(exc)) from None
    for layer in info.layers:
        restore_layer(info, layer, view=True)


class CorpusIndex:
    """An opened index: its manifest, word table, sentences and per-layer IVF indexes.

    The IVF files are memory-mapped (``faiss.read_index(..., IO_FLAG_MMAP)``), so opening is
    fast and only the inverted lists a search probes are read.

    Args:
        path: the index folder.

    Raises:
        MlmtoolError: as :func:`read_info`, or a table file that cannot be read.
    """

    def __init__(self, path: str | Path):
        import pyarrow as pa

        self.info = read_info(path)
        self.path = Path(path)
        words = [self._table(w) for w, _ in self.info.tables]
        texts = [self._table(s) for _, s in self.info.tables]
        self.words = pa.concat_tables(words) if words else None
        self.texts: dict[int, str] = {}
        for t in texts:
            self.texts.update(zip(t.column("sentence").to_pylist(), t.column("text").to_pylist()))
        self._layers: dict[int, Any] = {}

    def _table(self, name: str):
        """The Parquet table ``name`` of the index (a damaged one refused in one line)."""
        import pyarrow.parquet as pq

        try:
            return pq.read_table(self.path / name)
        except (OSError, ValueError) as exc:
            raise _damaged(self.path, name, str(exc)) from None

    def __len__(self) -> int:
        """The number of indexed words."""
        return self.info.words

    def layer(self, layer: int):
        """The memory-mapped faiss IVF index of ``layer`` (ids = word rows; ``nprobe`` set).

        Raises:
            MlmtoolError: ``layer`` was not indexed (the message lists those that were); its
                file is damaged (:func:`restore_layer`).
        """
        if layer not in self.info.layers:
            raise MlmtoolError(f"layer {layer} is not in the index '{self.path}'; indexed layers: "
                               + ", ".join(map(str, self.info.layers)), param="layer")
        if layer not in self._layers:
            self._layers[layer] = restore_layer(self.info, layer, view=True)
        return self._layers[layer]

    def vectors(self, layer: int):
        """All vectors of ``layer``: ``float16 [words, D]``, row ``i`` = word ``i`` (the stored
        float16 values, decoded from the inverted lists)."""
        import numpy as np

        index = self.layer(layer)
        out = np.empty((index.ntotal, index.d), np.float16)
        for ids, vectors in stored_lists(index):
            out[ids] = vectors
        return out


def stored_lists(index):
    """The words of an IVF layer, one inverted list at a time, as stored: ``(ids int64 [n],
    float16 [n, D])`` per non-empty list (reads only; works on a memory-mapped index)."""
    import faiss
    import numpy as np

    lists = index.invlists
    for k in range(index.nlist):
        n = lists.list_size(k)
        if n:
            ids = np.array(faiss.rev_swig_ptr(lists.get_ids(k), n), dtype=np.int64)
            codes = np.array(faiss.rev_swig_ptr(lists.get_codes(k), n * index.code_size), dtype=np.uint8)
            yield ids, codes.view(np.float16).reshape(n, index.d)


def load_index(path: str | Path) -> CorpusIndex:
    """Open the index folder ``path`` for :func:`mlmtool.search`.

    Returns:
        A :class:`CorpusIndex`.

    Raises:
        MlmtoolError: not an index, or a partial or corrupted one (see :func:`read_info`).
    """
    return CorpusIndex(path)
