"""Every generated engine flag says what it does and, where it takes one of a few names, which."""

from __future__ import annotations

import dataclasses
import re

import pytest

from nst_cli.main import main
from nst_engine.config import FIELD_CHOICES, FIELD_HELP, STYLE_STATISTICS, EngineConfig
from nst_engine.statistics import STATISTICS


def test_every_engine_field_has_a_description_and_choices_are_real_fields() -> None:
    fields = {f.name for f in dataclasses.fields(EngineConfig) if f.init}
    assert set(FIELD_HELP) == fields
    assert set(FIELD_CHOICES) <= fields
    assert set(STYLE_STATISTICS) == set(STATISTICS)  # the torch-free copy of the statistics' names


def test_stylize_help_lists_the_choices_of_every_choice_valued_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stylize", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name, choices in FIELD_CHOICES.items():
        flag = "--" + name.replace("_", "-")
        assert f"{flag} {{{','.join(choices)}}}" in help_text, flag
    for name, text in FIELD_HELP.items():
        assert " ".join(text.split()[:4]) in help_text, name  # the description, not the field name
    assert not re.search(r"--optimizer STR|--lbfgs-history INT lbfgs history", help_text)
