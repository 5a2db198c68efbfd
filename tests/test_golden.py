"""Golden test: every command's ``--json`` output on fixed inputs, stored before a refactor.

Each case runs one command through :class:`click.testing.CliRunner` (tiny random models of
``conftest.py``, the shipped ``en-mini`` and ``minilm``) and compares its JSON with the file
``tests/golden/<case>.json`` recorded from the code before issue 23's refactor. Floats are
compared to a relative 1e-4 (absolute 1e-6), so BLAS summation order cannot fail the test;
volatile fields (wall times, throughput, temporary paths) are dropped before comparing.

To record the files again after an intended change of output::

    MLMTOOL_UPDATE_GOLDEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MLMTOOL_UPDATE_GOLDEN") == "1"

#: words of keys whose values depend on the machine or the run (times, speeds, paths, what is cached)
VOLATILE = {"time", "times", "second", "seconds", "runtime", "path", "dir", "source", "version", "versions",
            "elapsed", "minutes", "date", "status"}

PAIRS_TSV = "the cat sat on the mat .\tthe cat sat in the mat .\nshe opened the door .\tshe opened the cat .\n"
SENTENCES = "the cat sat on the mat .\nshe opened the door and let the cat out .\nhe walked to the bank of the river .\n"
def _conllu(sentences):
    """CoNLL-U text of ``(form, upos, head, deprel)`` rows per sentence (lemma = form)."""
    blocks = []
    for rows in sentences:
        lines = ["# text = " + " ".join(r[0] for r in rows)]
        lines += [f"{i}\t{f}\t{f}\t{u}\t_\t_\t{h}\t{d}\t_\t_" for i, (f, u, h, d) in enumerate(rows, 1)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


CONLLU = _conllu([
    [("the", "DET", 2, "det"), ("cat", "NOUN", 3, "nsubj"), ("sat", "VERB", 0, "root"), ("on", "ADP", 6, "case"),
     ("the", "DET", 6, "det"), ("mat", "NOUN", 3, "obl"), (".", "PUNCT", 3, "punct")],
    [("the", "DET", 2, "det"), ("dog", "NOUN", 3, "nsubj"), ("ran", "VERB", 0, "root"), ("in", "ADP", 6, "case"),
     ("the", "DET", 6, "det"), ("park", "NOUN", 3, "obl"), (".", "PUNCT", 3, "punct")],
])

# (case name, model: "bert" | "roberta" | a registry name, argv after the model options)
CASES = [
    ("models", None, ["models", "--json"]),
    ("predict_bert", "bert", ["predict", "--json", "-k", "3", "the [MASK] sat on the mat ."]),
    ("predict_bert_joint", "bert", ["predict", "--json", "-k", "3", "the [MASK] sat on the [MASK] ."]),
    ("predict_bert_independent", "bert", ["predict", "--json", "--independent", "-k", "3",
                                          "the [MASK] sat on the [MASK] ."]),
    ("predict_bert_one_piece", "bert", ["predict", "--json", "--max-pieces", "1", "the [MASK] ran ."]),
    ("predict_roberta", "roberta", ["predict", "--json", "-k", "3", "the <mask> sat on the mat ."]),
    ("predict_bert_by_layer", "bert", ["predict", "--json", "--by-layer", "-k", "2", "the [MASK] sat ."]),
    ("predict_en_mini", "en-mini", ["predict", "--json", "She opened the [MASK] and let the cat out."]),
    ("predict_en_mini_input", "en-mini", ["predict", "--json", "-i", "masked.txt"]),
    ("score_bert", "bert", ["score", "--json", "the cat sat on the mat .", "the mat sat on the cat ."]),
    ("score_bert_original", "bert", ["score", "--json", "--variant", "original", "she opened the door ."]),
    ("score_roberta", "roberta", ["score", "--json", "the cat sat on the mat ."]),
    ("score_pairs_bert", "bert", ["score", "--json", "--pairs", "pairs.tsv"]),
    ("score_en_mini", "en-mini", ["score", "--json", "The keys to the cabinet are on the table."]),
    ("attention_bert", "bert", ["attention", "--json", "the cat sat ."]),
    ("attention_rollout_bert", "bert", ["attention", "--json", "--summary", "rollout", "the cat sat on the mat ."]),
    ("attention_flow_bert", "bert", ["attention", "--json", "--summary", "flow", "--layers", "1-2", "the cat sat ."]),
    ("attention_rollout_minilm", "minilm", ["attention", "--json", "--summary", "rollout", "The cat sat on the mat."]),
    ("heads_bert", "bert", ["heads", "--json", "-i", "sentences.txt", "-o", "heads-out"]),
    ("heads_pair_bert", "bert", ["heads", "--json", "-i", "sentences.txt", "-p", "cat:sat", "-o", "heads-pair"]),
    ("heads_conllu_bert", "bert", ["heads", "--json", "--conllu", "tiny.conllu", "--min-count", "1", "-o", "heads-ud"]),
    ("embed_bert", "bert", ["embed", "--json", "-i", "sentences.txt", "-o", "embed-out"]),
    ("embed_minilm_layer", "minilm", ["embed", "--json", "--layer", "3", "-i", "sentences.txt", "-o", "embed-m"]),
    ("explain_bert", "bert", ["explain", "--json", "--max-evals", "20", "-o", "explain-out",
                              "she opened the [MASK] and let the cat out ."]),
    ("compare_texts_bert", "bert", ["compare", "--json", "-k", "3", "the cat sat on the [MASK] .",
                                    "the dog sat on the [MASK] ."]),
    ("compare_models", "bert+bert", ["compare", "--json", "-k", "3", "the [MASK] sat on the mat ."]),
    ("finetune_bert", "bert", ["finetune", "corpus.txt", "--json", "-q", "--max-steps", "2", "-b", "4",
                               "--max-length", "16", "-o", "ft-out"]),
]


def _normalise(value, replacements):
    """Drop volatile keys and replace temporary paths, recursively."""
    if isinstance(value, dict):
        return {k: _normalise(v, replacements) for k, v in value.items() if not VOLATILE & set(k.lower().split("_"))}
    if isinstance(value, list):
        return [_normalise(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    return value


def _assert_close(got, want, where="$"):
    """Structural equality with floats compared to rel 1e-4 / abs 1e-6."""
    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and isinstance(want, (int, float)), f"{where}: {got!r} != {want!r}"
        if math.isnan(want):
            assert math.isnan(got), f"{where}: {got!r} != nan"
        else:
            assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), \
            f"{where}: keys {sorted(got) if isinstance(got, dict) else got!r} != {sorted(want)}"
        for k in want:
            _assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_close(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.fixture
def inputs(tmp_path):
    """The input files the cases name, written into the test's working directory."""
    (tmp_path / "pairs.tsv").write_text(PAIRS_TSV, encoding="utf-8")
    (tmp_path / "sentences.txt").write_text(SENTENCES, encoding="utf-8")
    (tmp_path / "tiny.conllu").write_text(CONLLU, encoding="utf-8")
    (tmp_path / "masked.txt").write_text("I drink a cup of [MASK] every morning.\nThe [MASK] is shining.\n",
                                         encoding="utf-8")
    (tmp_path / "corpus.txt").write_text((SENTENCES * 20), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("name,model,argv", CASES, ids=[c[0] for c in CASES])
def test_json_output_is_unchanged(name, model, argv, inputs, tiny_bert_dir, tiny_roberta_dir, runner):
    import torch

    from mlmtool.cli import cli

    torch.manual_seed(0)
    dirs = {"bert": str(tiny_bert_dir), "roberta": str(tiny_roberta_dir)}
    if model is None:
        model_args = []
    elif "+" in model:
        model_args = [a for m in model.split("+") for a in ("-m", dirs.get(m, m))]
    else:
        model_args = ["-m", dirs.get(model, model)]
    result = runner.invoke(cli, [argv[0], *model_args, *argv[1:]], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # finetune prints its progress lines before the JSON: the JSON starts at the first "{"/"["
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in "{[")
    got = _normalise(json.loads("\n".join(lines[start:])),
                     {str(tiny_bert_dir): "<tiny-bert>", str(tiny_roberta_dir): "<tiny-roberta>",
                      str(inputs): "<cwd>"})
    path = GOLDEN / f"{name}.json"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no golden file {path.name}: record it with MLMTOOL_UPDATE_GOLDEN=1")
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return
    _assert_close(got, json.loads(path.read_text(encoding="utf-8")))
