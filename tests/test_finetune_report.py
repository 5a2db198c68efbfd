"""The fine-tuning report (mlmtool/training/report.py) on a tiny model trained a few steps.

Properties: the held-out sentences are the same for the same split and seed, come from the
held-out text, and mask one one-piece word; the report's numbers are the run's own (loss and
perplexity) and equal what predict / compare_models give on the start and the saved model;
the page is self-contained; the CLI's closing lines point to it.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import CORPUS

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = dict(max_length=32, learning_rate=3e-3, batch_size=16, progress=False, checkpoint_minutes=None,
             max_steps=8)


def _config(corpus, model_dir, output, **kw):
    from mlmtool.training.config import FinetuneConfig

    return FinetuneConfig(corpus=[str(corpus)], model=str(model_dir), output=str(output), **(TRAIN | kw))


def _held_out(tokenizer, corpus, seed=42):
    from mlmtool.training.data import read_corpus, split_corpus

    files, sample_by = read_corpus([str(corpus)])
    return split_corpus(files, sample_by, tokenizer, 32, eval_fraction=0.1, seed=seed)[1]


def test_sentences_are_held_out_deterministic_and_mask_one_one_piece_word(tiny_bert, corpus):
    from mlmtool.training.report import pick_sentences

    tok = tiny_bert.tokenizer
    rows = _held_out(tok, corpus)
    first = pick_sentences(tok, rows, n=5, seed=42)
    assert first == pick_sentences(tok, _held_out(tok, corpus), n=5, seed=42) and len(first) == 5
    held_text = " ".join(tok.decode([l if l != -100 else t for t, l in zip(r["input_ids"], r["labels"])],
                                    skip_special_tokens=True) for r in rows)
    known = {s.replace(" .", ".") for s in CORPUS}
    for s in first:
        assert s.text.count("[MASK]") == 1
        assert s.text.replace("[MASK]", s.answer) == s.source
        assert s.source in known and s.source in held_text  # a whole corpus sentence, from the held-out split
        assert len(tok(s.answer, add_special_tokens=False)["input_ids"]) == 1
        assert not s.text.startswith("[MASK]")
    assert pick_sentences(tok, rows, n=5, seed=7) != first or len({s.source for s in first}) < 5
    assert pick_sentences(tok, [], n=5) == []


def _md_sentences(md: str) -> list[tuple[str, float, float]]:
    """(sentence, start %, trained %) of the held-out word, from report.md."""
    out = []
    for m in re.finditer(r"\*\*\d+\.\*\* (.+)\n\nThe held-out word: \*\*(.+?)\*\*, probability ([\d.]+)% → ([\d.]+)%",
                         md):
        out.append((m.group(1).replace("\\_", "_"), m.group(2), float(m.group(3)), float(m.group(4))))
    return out


@pytest.mark.slow  # the Trainer, twice or with the report's comparison
def test_finetune_writes_a_report_whose_numbers_are_the_runs_own(tiny_bert_dir, corpus, tmp_path):
    from mlmtool.analysis.compare import compare_models
    from mlmtool.analysis.predict import predict
    from mlmtool.models import load
    from mlmtool.training.train import finetune

    out = tmp_path / "out"
    res = finetune(_config(corpus, tiny_bert_dir, out))
    md = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"| loss (nats per masked token) | {res.before.loss:.4f} | {res.after.loss:.4f} |" in md
    assert f"| perplexity | {res.before.perplexity:.2f} | {res.after.perplexity:.2f} |" in md
    rows = _md_sentences(md)
    assert len(rows) == 5
    start, trained = load(str(tiny_bert_dir)), load(str(out))
    vocab = start.model.config.vocab_size
    for text, answer, p_start, p_trained in rows:
        for lm, shown in ((start, p_start), (trained, p_trained)):
            piece = predict(lm, text, top_k=vocab, max_pieces=1).masks[0].candidates
            prob = next(c.score for c in piece if c.token == answer)
            assert shown == pytest.approx(100 * prob, abs=0.051)
    heads = compare_models(start, trained, [r[0] for r in rows])
    for l, h, d in heads.top(3):
        assert f"| L{l}-H{h} | {d:.4f} |" in md
    assert (out / "report_heads.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in page and "<script" not in page
    assert not re.search(r"https?://", page) and "default-src 'none'" in page
    assert "Start model:" in md and json.loads((out / "training_summary.json").read_text())["steps"] == 8


def test_cli_closing_lines_point_to_the_report(runner, tiny_bert_dir, corpus, tmp_path):
    from mlmtool.cli import cli

    out = tmp_path / "m"
    r = runner.invoke(cli, ["finetune", str(corpus), "-m", str(tiny_bert_dir), "-o", str(out), "--max-steps", "2",
                            "--max-length", "32", "-q"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == (f"What changed (held-out loss, predictions, heads): {out}/report.html "
                                                 "and report.md")


@pytest.mark.slow  # the Trainer, twice or with the report's comparison
def test_from_scratch_and_no_split_say_what_is_missing(tiny_bert_dir, corpus, tmp_path):
    from mlmtool.training.train import finetune

    finetune(_config(corpus, tiny_bert_dir, tmp_path / "s", from_scratch=True, layers=1, heads=2, hidden=16,
                     max_steps=2))
    md = (tmp_path / "s" / "report.md").read_text(encoding="utf-8")
    assert "trained from scratch: there is no start model to compare with" in md
    assert "## Attention heads" not in md and "| word | trained |" in md
    finetune(_config(corpus, tiny_bert_dir, tmp_path / "n", eval_fraction=0.0, max_steps=2))
    md = (tmp_path / "n" / "report.md").read_text(encoding="utf-8")
    assert "No held-out split" in md and "no held-out sentence to show" in md


def test_write_report_with_a_start_model_equals_a_captured_start(tiny_bert, tiny_bert_dir, tmp_path):
    """Comparing with the start model at hand, or with its side captured earlier, gives one report
    (the captured side cannot score the trained model's words of several pieces: '–')."""
    from mlmtool.analysis.compare import run_side
    from mlmtool.models import load
    from mlmtool.training.loss import EvalResult
    from mlmtool.training.report import ReportSentence, write_report

    other = load(str(tiny_bert_dir))
    import torch

    with torch.no_grad():
        other.model.cls.predictions.decoder.bias += torch.linspace(-1, 1, other.model.config.vocab_size)
    sentences = [ReportSentence("the [MASK] sat on the mat .", "cat", "the cat sat on the mat ."),
                 "we read a [MASK] book ."]
    before, after = EvalResult(4.0, 54.6, 10), EvalResult(3.0, 20.1, 10)
    write_report(tmp_path / "a", tiny_bert, other, sentences, before, after)
    side = run_side(tiny_bert, [s.text if isinstance(s, ReportSentence) else s for s in sentences],
                    label=f"start ({tiny_bert.name})")
    write_report(tmp_path / "b", side, other, sentences, before, after)
    a = (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    b = (tmp_path / "b" / "report.md").read_text(encoding="utf-8")
    scored = [line for line in b.splitlines() if line.startswith("| ") and "–" not in line]
    assert len(scored) > 10 and all(line in a.splitlines() for line in scored)
    assert "–" not in a
    assert "The held-out word: **cat**" in a and a.count("The held-out word") == 1


def test_report_is_data_then_a_page_that_inlines_the_png_it_wrote(tiny_bert, tmp_path):
    """build_report → FinetuneReport (JSON-ready data) → save: the page carries the very PNG
    written beside it (from memory, not read back), and rendering again gives the same page."""
    import base64

    from mlmtool.training.loss import EvalResult
    from mlmtool.training.report import REPORT_PNG, build_report, render_report_html, render_report_markdown

    sentences = ["the [MASK] sat on the mat .", "we read a [MASK] book ."]
    report = build_report(tiny_bert, tiny_bert, sentences, EvalResult(4.0, 54.6, 10), EvalResult(3.0, 20.1, 10))
    data = json.loads(json.dumps(report.to_dict()))
    assert [s["text"] for s in data["sentences"]] == sentences and data["after"]["loss"] == 3.0
    assert len(data["heads"]) == min(10, tiny_bert.num_layers * tiny_bert.num_heads)
    paths = report.save(tmp_path / "r")
    assert [p.name for p in paths] == ["report.html", "report.md", REPORT_PNG]
    page = paths[0].read_text(encoding="utf-8")
    inline = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1))
    assert inline == paths[2].read_bytes() and inline[:4] == b"\x89PNG"
    assert str(render_report_html(report)) == page and render_report_markdown(report) == paths[1].read_text()
