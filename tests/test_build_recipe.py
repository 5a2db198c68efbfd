"""scripts/en_mini/build.py: which corpus files each recipe stage reads (no training)."""

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
    # from stage 3 on, --max-steps binds before --minutes (so the LR decays to 0 and a faster
    # machine runs the same steps) at 1.8 s per step (stages 3-7 averaged 1.65-1.83 s, with a
    # margin of 6-25 min each); stage 1 stopped on its time limit, at 1,537 of 2,000 steps
    assert all(r.max_steps * 1.8 / 60 < r.minutes for r in runs[2:])
