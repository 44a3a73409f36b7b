"""`examples/zero_shot_conll_encoder.sh`: the run it makes (a stand-in `python` records the command)."""

from __future__ import annotations

from tests.examples.stand_in_python import option, run_wrapper


def test_the_other_conll_languages_are_the_sources_by_default(tmp_path):
    code, commands, _ = run_wrapper(tmp_path, "zero_shot_conll_encoder.sh", "es", str(tmp_path / "out"))
    assert code == 0 and len(commands) == 1
    assert option(commands[0], "--source_languages", 3) == ["en", "de", "nl"]
    assert option(commands[0], "--conll_dir") == str(tmp_path / "shared" / "data")


def test_languages_and_manmoe_data_name_another_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    code, commands, _ = run_wrapper(tmp_path, "zero_shot_conll_encoder.sh", "fi", str(tmp_path / "out"),
                                    LANGUAGES="en sv fi", MANMOE_DATA=str(corpus))  # fmt: skip
    assert code == 0 and option(commands[0], "--source_languages", 2) == ["en", "sv"]
    assert option(commands[0], "--target_language") == "fi" and option(commands[0], "--conll_dir") == str(corpus)
    code, commands, stderr = run_wrapper(tmp_path, "zero_shot_conll_encoder.sh", "fi", LANGUAGES="en de es nl")
    assert code == 2 and commands == [] and "TARGET 'fi' must be one of LANGUAGES (en de es nl)" in stderr
