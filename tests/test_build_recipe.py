"""scripts/en_mini/build.py: which corpus files each recipe stage reads (no training)."""

from pathlib import Path

from scripts.en_mini import build as bom


def _corpus_of(argv, monkeypatch):
    seen = {}
    monkeypatch.setattr(bom, "train", lambda args, corpus: seen.setdefault("corpus", corpus))
    args = bom.parser().parse_args(["--bf16", *argv])
    bom.build(args)
    return [p.name for p in seen["corpus"]]


def test_each_flag_adds_its_file(monkeypatch):
    assert _corpus_of([], monkeypatch) == ["train.txt"]
    assert _corpus_of(["--more-text", "--extra-text"], monkeypatch) == ["train.txt", "train-more.txt",
                                                                           "train-extra.txt"]


def test_recipe_stages_chain_and_the_last_reads_all_four_files(monkeypatch):
    runs = [bom.parser().parse_args(["--bf16", *stage]) for stage in bom.RECIPE]
    # every stage after the first continues from the one before it
    assert [r.continue_from for r in runs[1:]] == [r.run_dir for r in runs[:-1]]
    assert _corpus_of(bom.RECIPE[-1], monkeypatch) == ["train.txt", "train-more.txt", "train-general.txt",
                                                       "train-extra.txt"]


def test_each_stage_passes_its_start_model_and_limits_to_finetune(monkeypatch):
    """``train`` runs ``mlmtool finetune`` from the stage's start model with the stage's own step
    and time limits (the recipe's numbers reach the command, none is dropped or swapped)."""
    commands = []
    monkeypatch.setattr(bom.subprocess, "run", lambda cmd, **kw: commands.append(cmd))
    for stage in bom.RECIPE:
        args = bom.parser().parse_args(["--bf16", *stage])
        bom.train(args, [Path("train.txt")])
        cmd = commands[-1]
        assert cmd[1:4] == ["-m", "mlmtool", "finetune"]
        options = cmd[4:]
        flag = lambda name: options[options.index(name) + 1]  # noqa: E731
        assert flag("-m") == str(args.continue_from or "minilm") and flag("-o") == str(args.run_dir)
        assert int(flag("--max-steps")) == args.max_steps > 0
        assert float(flag("--max-minutes")) == args.minutes > 0
    assert len(commands) == len(bom.RECIPE)
