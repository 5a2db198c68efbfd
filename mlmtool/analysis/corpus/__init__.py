"""Corpus search (issue 28): index a corpus's contextual word vectors, find a word's neighbours.

* :mod:`.store`: the index folder (manifest, word table, one IVF index per layer) and
  :func:`~.store.load_index`;
* :mod:`.build`: :func:`~.build.build_index`, streaming, resumable, appending;
* :mod:`.query`: :func:`~.query.search`, the bracketed word's nearest corpus words.

docs/search.md describes the format and why faiss's inverted file was chosen.
"""
