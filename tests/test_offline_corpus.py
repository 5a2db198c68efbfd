"""The corpus cleaners of scripts/en_mini/offline_corpus.py, on hand-written documents (no downloads)."""

from pathlib import Path

from scripts.en_mini import offline_corpus

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
        "debian-reference": ["A manual sentence. " + PROSE]})
    monkeypatch.setattr(offline_corpus, "gather_more", lambda cache: {"jargon": [shared, "Fresh text."]})
    monkeypatch.setattr(offline_corpus, "gather_general", lambda cache: {"brown": ["General text.", shared]})
    near = "Another held-out sentence. " + PROSE  # shares a 10-word run with the manual's passage
    monkeypatch.setattr(offline_corpus, "gather_extra", lambda cache: {"mail": [shared, near, "Mail text."]})
    stats = offline_corpus.write(tmp_path / "cache", tmp_path)
    assert sorted((tmp_path / "train.txt").read_text().splitlines()) == sorted([PROSE, shared])
    assert (tmp_path / "train-more.txt").read_text().splitlines() == ["Fresh text."]
    assert (tmp_path / "train-general.txt").read_text().splitlines() == ["General text."]
    assert stats["brown"]["use"] == "train-general" and stats["brown"]["passages"] == 1
    assert (tmp_path / "train-extra.txt").read_text().splitlines() == ["Mail text."]
    assert stats["mail"]["use"] == "train-extra" and stats["mail"]["passages"] == 1
    assert (tmp_path / "heldout-anarchism.txt").read_text().splitlines() == [shared, "Another held-out sentence."]
    assert stats["jargon"] == {"passages": 1, "bytes": len("Fresh text.") + 1, "use": "train-more"}
    assert stats["anarchism"]["use"] == "heldout" and stats["fortunes"]["use"] == "train"


def test_brown_tags_are_stripped_and_quotes_restored(tmp_path):
    tagged = ("The/at jury/nn said/vbd ,/, ``/`` it/pps is/bez fine/jj ''/'' (/( really/rb )/) ./.")
    assert offline_corpus.brown_detokenize(tagged) == 'The jury said, " it is fine " (really).'
    # a Brown sample file: paragraphs separated by blank lines, sentences on tab-indented lines;
    # short paragraphs are grouped within the file until a passage has min_words words
    sample = tmp_path / "ca01"
    sample.write_text("\n\n\tThe/at old/jj man/nn walked/vbd home/nr ./.\n\n\n"
                      "\tHe/pps was/bedz very/ql tired/vbn and/cc hungry/jj after/in the/at long/jj day/nn ./.\n"
                      "\tHis/pp$ dog/nn followed/vbd him/ppo all/abn the/at way/nn ./.\n")
    assert offline_corpus.brown_passages([sample], min_words=10) == [
        "The old man walked home. He was very tired and hungry after the long day. "
        "His dog followed him all the way."]


def test_group_words_and_speech_sentences():
    assert offline_corpus.group_words(["one two", "", "three", "four five six"], min_words=3) == [
        "one two three", "four five six"]
    speech = ("Fellow citizens, the year has been good for the farms of the nation. (Applause.) "
              "We have built roads and schools in every state of the union! Will it last? "
              '"Yes," said the people of the country with one voice.')
    assert offline_corpus.sentence_passages(speech, min_words=14) == [
        "Fellow citizens, the year has been good for the farms of the nation. "
        "We have built roads and schools in every state of the union!",
        'Will it last? "Yes," said the people of the country with one voice.']


def test_mail_keeps_the_plain_body_without_quotes_signature_footer_or_links(tmp_path):
    mail = tmp_path / "00001.txt"
    mail.write_text(
        "From: someone@example.com\nSubject: fox\nContent-Type: text/plain; charset=us-ascii\n\n"
        "Bob Smith wrote:\n> The quoted line of the message before, which is not ours at all.\n\n"
        "The quick brown fox jumps over\nthe lazy dog near the river bank today.\n\n"
        "See http://example.com/fox for the pictures of the dog and the fox today.\n\n"
        "-- \nBob, whose signature is long enough to look like prose to the filter.\n")
    assert offline_corpus.mail_passages([mail]) == [PROSE]
    footer = tmp_path / "00002.txt"
    footer.write_text("Subject: x\n\n" + PROSE + "\n\n" + "_" * 20 + "\nThe list footer, which is written "
                      "in prose by the mailing list software.\n")
    assert offline_corpus.mail_passages([footer]) == [PROSE]


def test_word_runs_are_case_folded_runs_of_ten_words():
    assert offline_corpus.word_runs("A b c d e f g h i j K") == {"a b c d e f g h i j", "b c d e f g h i j k"}
    assert offline_corpus.word_runs("too short") == set()
