"""Contextual word embeddings: hidden states → one vector per word → a 2-D map.

The model runs once here (:func:`word_vectors`); :func:`project` turns the vectors into 2-D
points with scikit-learn (PCA or t-SNE); renderers (:mod:`mlmtool.render.embed_view`) take the
resulting :class:`Projection` and never see the model.

A word split into several sub-word pieces (``play ##ing``) becomes the mean of its pieces'
hidden states, a common pooling for word-level probes (e.g. Ethayarajh 2019, "How
contextual are contextualized word representations?"). The same word in two sentences gets
two points, so one can see how context moves it ("bank" by the river vs. "bank" that lends
money).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.forward import encode, iter_forward
from ..errors import MlmtoolError
from ..models import LoadedModel
from ..tokens import display_token, to_model_text, word_ids_of, word_pieces, word_strings

if TYPE_CHECKING:
    import numpy as np

# NumPy is imported inside the functions, so that the CLI can read METHODS at start-up
# (``mlmtool --help`` imports no NumPy).

#: Projection methods, as the CLI spells them.
METHODS = ("pca", "tsne")

#: scikit-learn's default t-SNE perplexity, used when there are enough points.
DEFAULT_PERPLEXITY = 30.0


@dataclass
class WordVectors:
    """One contextual vector per word (or special token) of some sentences.

    Attributes:
        vectors: ``float32 [points, hidden]``; row ``i`` is the mean hidden state of the
            pieces of word ``i`` at layer :attr:`layer`.
        words: ``[points]`` label of each point: the word as the user wrote it
            (:func:`mlmtool.tokens.word_strings`), or the special token (``[CLS]``) when kept.
        sentence_index: ``[points]`` which sentence each point comes from, counted from 0
            (the index into :attr:`sentences`).
        sentences: the input sentences, as given.
        special: ``[points]`` True for special tokens (only with ``keep_special``).
        layer: hidden-state layer: 0 = input embeddings, ``L`` = output of layer ``L``
            (layers counted from 1 as everywhere users see them).
        model_name: the model's name, for titles.
    """

    vectors: np.ndarray
    words: list[str]
    sentence_index: list[int]
    sentences: list[str]
    special: list[bool]
    layer: int
    model_name: str = ""

    def __len__(self) -> int:
        """The number of points (words, and special tokens when kept)."""
        return len(self.words)

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``: the attributes, ``vectors`` as nested lists ``[points][hidden]``."""
        return {"vectors": self.vectors.tolist(), "words": list(self.words),
                "sentence_index": [int(i) for i in self.sentence_index], "sentences": list(self.sentences),
                "special": [bool(b) for b in self.special], "layer": int(self.layer), "model_name": self.model_name}

    def save(self, path: str | Path) -> Path:
        """Write the vectors and labels to a NumPy ``.npz`` file (no pickles).

        Arrays in the file: ``vectors`` ``float32 [points, hidden]``, ``words`` ``str
        [points]``, ``sentence_index`` ``int [points]``, ``sentences`` ``str [n]``,
        ``special`` ``bool [points]``, ``layer`` and ``model_name`` (0-d). Read it back with
        :func:`load_vectors` or ``numpy.load``. Returns the path.
        """
        import numpy as np

        path = Path(path)
        with path.open("wb") as fh:
            np.savez(fh, vectors=self.vectors, words=np.array(self.words, dtype=str),
                     sentence_index=np.array(self.sentence_index, dtype=np.int64),
                     sentences=np.array(self.sentences, dtype=str),
                     special=np.array(self.special, dtype=bool),
                     layer=np.array(self.layer), model_name=np.array(self.model_name))
        return path


def load_vectors(path: str | Path) -> WordVectors:
    """Read a file written by :meth:`WordVectors.save` (``allow_pickle=False``).

    Raises:
        MlmtoolError: the file is missing or is not an mlmtool vectors file.
    """
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return WordVectors(vectors=data["vectors"], words=data["words"].tolist(),
                               sentence_index=data["sentence_index"].tolist(),
                               sentences=data["sentences"].tolist(),
                               special=data["special"].tolist(), layer=int(data["layer"]),
                               model_name=str(data["model_name"]))
    except (OSError, KeyError, ValueError) as exc:
        raise MlmtoolError(f"'{path}' is not an mlmtool vectors file ({exc})") from None


@dataclass
class Projection:
    """Words placed on a plane, ready to draw.

    Attributes:
        coords: ``float64 [points, 2]``; unitless (PCA: coordinates along the first two
            principal components; t-SNE: an embedding where only neighbourhoods matter).
        words, sentence_index, sentences, special, layer, model_name: as in
            :class:`WordVectors`, one entry per point.
        method: ``"pca"`` or ``"tsne"``.
        explained_variance: PCA only: fraction of the variance each of the two axes
            explains (``[2]``, from ``PCA.explained_variance_ratio_``); None for t-SNE.
        perplexity: t-SNE only: the perplexity used; None for PCA.
        notes: lines worth telling the user (e.g. "perplexity lowered to 3").
    """

    coords: np.ndarray
    words: list[str]
    sentence_index: list[int]
    sentences: list[str]
    special: list[bool]
    layer: int
    method: str
    model_name: str = ""
    explained_variance: list[float] | None = None
    perplexity: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``: one record per point plus the projection's settings."""
        return {
            "model": self.model_name, "layer": self.layer, "method": self.method,
            "explained_variance": self.explained_variance, "perplexity": self.perplexity,
            "sentences": list(self.sentences),
            "points": [{"word": w, "sentence": int(s) + 1, "special": bool(sp),
                        "x": float(x), "y": float(y)}
                       for w, s, sp, (x, y) in zip(self.words, self.sentence_index, self.special,
                                                   self.coords.tolist())],
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path``; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path


def word_vectors(lm: LoadedModel, texts: str | list[str], layer: int | None = None,
                 keep_special: bool = False, batch_size: int = 16) -> WordVectors:
    """Hidden states of one layer, pooled to one vector per word.

    Runs the model once through the forward core (:func:`mlmtool.core.forward.iter_forward`
    with ``hidden_states=True``), which gives ``[layers + 1, seq, hidden]`` per sentence:
    index 0 is the embedding layer's output, index ``L`` the output of transformer layer
    ``L`` (the HF ``hidden_states`` convention). The pieces of
    each word (:func:`mlmtool.tokens.word_pieces`) are averaged.

    Args:
        lm: a model from :func:`mlmtool.load` (no masked-LM head needed).
        texts: one sentence or a list; ``[MASK]`` becomes the model's mask token.
        layer: 0 (input embeddings) to ``lm.num_layers``; None (default) = the last layer.
        keep_special: also return a point for each special token (``[CLS]``, ``[SEP]``).
        batch_size: sentences per forward pass (default 16), bucketed by length; padding
            never enters a word's mean.

    Returns:
        :class:`WordVectors` with ``vectors`` ``float32 [points, hidden]``, words in text
        order, sentences in input order.

    Raises:
        MlmtoolError: layer out of range, an empty sentence, or one longer than the model's
            maximum length.
    """
    import numpy as np

    items = [texts] if isinstance(texts, str) else list(texts)
    if layer is None:
        layer = lm.num_layers
    if not 0 <= layer <= lm.num_layers:
        raise MlmtoolError(f"layer must be between 0 (input embeddings) and {lm.num_layers} "
                           f"(the last layer of '{lm.name}'), got {layer}", param="layer")
    encoding = encode(lm, items, need_mask=False)
    encoded = encoding["input_ids"]
    model_texts = [to_model_text(t, lm.mask_token) for t in items]
    per_text: list[tuple[list[np.ndarray], list[str], list[bool]] | None] = [None] * len(items)
    tok = lm.tokenizer
    for f in iter_forward(lm, encoded, hidden_states=True, batch_size=batch_size):
        i, hidden = f.index, f.hidden_states[layer]  # [S, D]
        word_ids = word_ids_of(encoding, i, tok)
        groups = word_pieces(word_ids)
        labels = word_strings(model_texts[i], encoding, i, tok)
        vecs = [hidden[g].mean(axis=0) for g in groups]
        special = [False] * len(groups)
        if keep_special:
            vecs, labels, special = _with_specials(tok, encoded[i], word_ids, hidden, vecs, labels)
        per_text[i] = (vecs, labels, special)
    vectors, words, sent, special = [], [], [], []
    for i, (vecs, labels, spec) in enumerate(per_text):  # type: ignore[misc]
        vectors.extend(vecs)
        words.extend(labels)
        sent.extend([i] * len(labels))
        special.extend(spec)
    hidden_size = lm.model.config.hidden_size
    matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, hidden_size), np.float32)
    return WordVectors(vectors=matrix, words=words, sentence_index=sent, sentences=items,
                       special=special, layer=layer, model_name=lm.name)


def _with_specials(tok, ids, word_ids, hidden, vecs, labels):
    """Interleave special-token points (one per token, in sequence order) with the words."""
    out_v, out_l, out_s = [], [], []
    seen: set[int] = set()
    w = 0
    for pos, wid in enumerate(word_ids):
        if wid is None:
            out_v.append(hidden[pos])
            out_l.append(display_token(tok.convert_ids_to_tokens(int(ids[pos]))))
            out_s.append(True)
        elif wid not in seen:
            seen.add(wid)
            out_v.append(vecs[w])
            out_l.append(labels[w])
            out_s.append(False)
            w += 1
    return out_v, out_l, out_s


def auto_perplexity(n_points: int, requested: float | None = None) -> tuple[float, str | None]:
    """A valid t-SNE perplexity for ``n_points`` points, and a note when it was lowered.

    scikit-learn requires ``perplexity < n_samples``. Without a request the default is
    :data:`DEFAULT_PERPLEXITY` (30, scikit-learn's default), lowered for small inputs to
    ``max(1, (n_points - 1) / 3)`` (the rule of thumb ``3 * perplexity < n - 1`` used by
    van der Maaten's Barnes-Hut t-SNE implementation).

    Raises:
        MlmtoolError: a requested perplexity that is not positive or not below ``n_points``.
    """
    if requested is not None:
        if requested <= 0 or requested >= n_points:
            raise MlmtoolError(f"perplexity must be above 0 and below the number of points "
                               f"({n_points}), got {requested:g}", param="perplexity")
        return float(requested), None
    value = DEFAULT_PERPLEXITY
    if 3 * value >= n_points - 1:
        value = max(1.0, (n_points - 1) / 3)
        return value, (f"t-SNE perplexity set to {value:.3g} (default {DEFAULT_PERPLEXITY:g}) "
                       f"because there are only {n_points} points")
    return value, None


def project(vectors: WordVectors, method: str = "pca", perplexity: float | None = None,
            seed: int = 0) -> Projection:
    """Project word vectors to 2-D with scikit-learn.

    * ``pca``: ``sklearn.decomposition.PCA(n_components=2)`` (centred, no whitening);
      deterministic.
    * ``tsne``: ``sklearn.manifold.TSNE(n_components=2, init="pca", random_state=seed)``
      (van der Maaten & Hinton 2008) with :func:`auto_perplexity`.

    Args:
        vectors: from :func:`word_vectors` or :func:`load_vectors`.
        method: ``"pca"`` (default) or ``"tsne"``.
        perplexity: t-SNE perplexity; None (default) chooses a valid one.
        seed: random seed for t-SNE (default 0).

    Returns:
        :class:`Projection` with ``coords`` ``float64 [points, 2]``.

    Raises:
        MlmtoolError: unknown method, fewer than 3 points, or a bad perplexity.
    """
    import numpy as np

    if method not in METHODS:
        raise MlmtoolError(f"method '{method}' is unknown; choose one of: {', '.join(METHODS)}", param="method")
    n = len(vectors)
    if n < 3:
        raise MlmtoolError(f"need at least 3 words to draw a 2-D map, got {n}; give more or "
                           "longer sentences")
    data = np.asarray(vectors.vectors, dtype=np.float64)
    if importlib.util.find_spec("sklearn") is None:
        raise MlmtoolError("embed needs scikit-learn: pip install 'mlmtool[explain]'")
    notes: list[str] = []
    explained = used_perplexity = None
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2)
        coords = pca.fit_transform(data)
        explained = [float(v) for v in pca.explained_variance_ratio_]
    else:
        from sklearn.manifold import TSNE

        used_perplexity, note = auto_perplexity(n, perplexity)
        if note:
            notes.append(note)
        coords = TSNE(n_components=2, perplexity=used_perplexity, init="pca",
                      random_state=seed).fit_transform(data)
    return Projection(coords=np.asarray(coords, dtype=np.float64), words=list(vectors.words),
                      sentence_index=list(vectors.sentence_index), sentences=list(vectors.sentences),
                      special=list(vectors.special), layer=vectors.layer, method=method,
                      model_name=vectors.model_name, explained_variance=explained,
                      perplexity=used_perplexity, notes=notes)
