"""``introspect --help`` and each command's help are plain text for a terminal and describe everything."""
from __future__ import annotations

import argparse
import re

import pytest

from introspect.cli import main
from introspect.cli.parser import build_parser

MARKUP = re.compile(r"``|`|:(data|func|mod|class|meth|attr):|\.\. [a-z]+::|\*\*")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_main_help_lists_every_command_with_a_description(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert not MARKUP.search(text), MARKUP.search(text)
    commands = subcommands(build_parser())
    assert set(commands) == {"plan", "summary", "train", "table", "select", "figure", "analyse", "claims",
                             "merge-tests", "preflight", "download", "worker"}
    for name in commands:
        line = next(line for line in text.splitlines() if line.strip().split(" ")[0] == name)
        described = line.strip()[len(name):].strip() or text.splitlines()[text.splitlines().index(line) + 1].strip()
        assert len(described) > 15, name


@pytest.mark.parametrize("name", sorted(subcommands(build_parser())))
def test_each_command_describes_every_option_in_plain_text(name, capsys):
    parser = subcommands(build_parser())[name]
    text = parser.format_help()
    assert not MARKUP.search(text), (name, MARKUP.search(text))
    assert parser.description and len(parser.description) > 15
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS and len(action.help) > 10, (name, action.dest)
        assert action.help in " ".join(text.split()) or action.help.split(" (default")[0] in " ".join(text.split())
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert capsys.readouterr().out.startswith(f"usage: introspect {name}")
