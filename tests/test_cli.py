"""Every command's help renders (argparse formats help lazily: a stray % only fails when asked)."""
import pytest

from introspect.cli import main

COMMANDS = ["train", "plan", "table", "claims", "summary", "select", "figure", "analyse", "merge-tests", "worker",
            "download"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_renders(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"] if command is None else [command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: introspect")
    if command is None:
        assert all(name in out for name in COMMANDS)
