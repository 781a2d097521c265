"""The lazily loaded command table: every entry is a click command whose help starts with the
short help the table shows in `--help`, which itself imports no command module."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import click
import pytest

from reconciler.cli import COMMANDS, HIDDEN


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_table_entry_is_the_command(name):
    module, attribute, short = COMMANDS[name]
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command) and command.name == name
    assert command.hidden == (name in HIDDEN)
    if not command.hidden:
        first_paragraph = inspect.cleandoc(command.help).split("\n\n")[0].replace("\n", " ")
        assert short and first_paragraph.startswith(short)


def test_help_imports_no_command_module(tmp_path):
    code = ("import sys\nfrom reconciler.cli import main\n"
            "try:\n    main(['--root', sys.argv[1], '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('reconciler.cli.') "
            "and m != 'reconciler.cli.common'), file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "[]\n"
    for name in COMMANDS:
        assert (f"\n  {name} " in p.stdout) == (name not in HIDDEN), name
