"""The corpus cleaners of scripts/offline_corpus.py, on hand-written documents (no downloads)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import offline_corpus  # noqa: E402

PROSE = "The quick brown fox jumps over the lazy dog near the river bank today."


def test_pod_keeps_prose_and_drops_commands_verbatim_and_code(tmp_path):
    pod = tmp_path / "perlfaq0.pod"
    pod.write_text(
        "=head1 NAME\n\nperlfaq0 - a test\n\n"
        "A B<bold> word and a L<link|perlfunc> in a sentence about I<many> things X<index entry>today.\n\n"
        "    my $x = 1;   # verbatim paragraph, never prose\n\n"
        "Call C<open()> with a file name and check what it returns to the caller here.\n\n"
        "=cut\n")
    assert offline_corpus.pod_passages([pod]) == [
        "A bold word and a link in a sentence about many things today."]


def test_plain_text_blocks_are_joined_and_tables_dropped():
    text = ("The quick brown fox jumps over\nthe lazy dog near the river {bank} today.\n\n"
            "│ NYU │ New York University and some more words here │\n\n"
            "short line\n")
    assert offline_corpus.block_passages(text) == [PROSE]


def test_more_text_leaves_out_held_out_passages_but_train_keeps_its_text(tmp_path, monkeypatch):
    shared = "A sentence that is both in a training source and in a held-out source, word for word."
    monkeypatch.setattr(offline_corpus, "gather", lambda cache: {
        "fortunes": [PROSE, shared], "anarchism": [shared, "Another held-out sentence."],
        "debian-reference": ["A manual sentence."]})
    monkeypatch.setattr(offline_corpus, "gather_more", lambda cache: {"jargon": [shared, "Fresh text."]})
    stats = offline_corpus.write(tmp_path / "cache", tmp_path)
    assert sorted((tmp_path / "train.txt").read_text().splitlines()) == sorted([PROSE, shared])
    assert (tmp_path / "train-more.txt").read_text().splitlines() == ["Fresh text."]
    assert (tmp_path / "heldout-anarchism.txt").read_text().splitlines() == [shared, "Another held-out sentence."]
    assert stats["jargon"] == {"passages": 1, "bytes": len("Fresh text.") + 1, "use": "train-more"}
    assert stats["anarchism"]["use"] == "heldout" and stats["fortunes"]["use"] == "train"
