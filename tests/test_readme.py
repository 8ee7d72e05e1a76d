"""The README's command examples against the real CLI: every ``bench`` command and option the README's
```sh blocks use exists (read from the CLI at test time), every option the CLI offers is mentioned there,
and the examples that are cheap to run (listing, rendering a golden results file) really run.

Options are read from the command Typer builds, the same object that prints ``--help`` (and each is
checked to appear in that ``--help``), so an option added anywhere shows up here without editing this file.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.testing import CliRunner

import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GOLDEN = ROOT / "tests" / "data" / "results-v1.json"
# A wide terminal, so Rich never folds an option name in --help.
WIDE = {"COLUMNS": "240", "TERMINAL_WIDTH": "240"}
_OPTION = re.compile(r"(?<![\w/.:-])(--[a-z][a-z0-9-]*|-[a-z])(?![\w-])")
_SYNOPSIS_MARKS = ("[", "…", "|")  # an example with these is a synopsis, not a command line to parse


@dataclass(frozen=True)
class Example:
    """One ``bench ...`` command line from a ```sh block of the README."""

    line: str
    command: str
    args: list[str]

    @property
    def options(self) -> set[str]:
        return set(_OPTION.findall(" ".join(self.args)))

    @property
    def concrete(self) -> bool:
        return not any(mark in self.line for mark in _SYNOPSIS_MARKS)


def sh_blocks(text: str) -> list[str]:
    """The ```sh blocks, dedented (a block inside a list item is indented with it)."""
    found = re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```", text, flags=re.MULTILINE | re.DOTALL)
    return [textwrap.dedent(block) for block in found]


def logical_lines(block: str) -> list[str]:
    """A line that starts indented, or follows a trailing backslash, continues the one before."""
    lines: list[str] = []
    for raw in block.splitlines():
        if lines and (raw[:1].isspace() or lines[-1].endswith("\\")):
            lines[-1] = lines[-1].removesuffix("\\").rstrip() + " " + raw.strip()
        elif raw.strip():
            lines.append(raw.strip())
    return lines


def examples(text: str) -> list[Example]:
    found = []
    for block in sh_blocks(text):
        for line in logical_lines(block):
            line = re.sub(r"\s+#.*$", "", line)  # a trailing comment
            for segment in re.split(r"&&|;|\s\|\s", line):
                words = shlex.split(segment)  # a quoted value (--setup "python seed.py") is one word
                if len(words) >= 2 and (words[0] == "bench" or words[0].endswith("/bench")):
                    found.append(Example(segment.strip(), words[1], words[2:]))
    return found


def commands() -> dict[str, TyperCommand]:
    group = typer.main.get_command(cli.app)
    assert isinstance(group, TyperGroup)
    return dict(group.commands)


def options_of(command: TyperCommand) -> list[TyperOption]:
    return [p for p in command.params if isinstance(p, TyperOption)]


def names(option: TyperOption) -> set[str]:
    return {*option.opts, *option.secondary_opts}


def unmentioned(option: TyperOption, mentioned: set[str]) -> set[str]:
    """The names of ``option`` the README still has to mention. An on/off flag: the form that changes its
    default (both forms when the default is decided elsewhere, e.g. per variant); any other option: one of
    its names."""
    if option.is_flag and option.secondary_opts:
        if option.default is None:
            required = {*option.opts, *option.secondary_opts}
        else:
            required = set(option.secondary_opts if option.default else option.opts)
        return required - mentioned
    return set() if names(option) & mentioned else names(option)


README_EXAMPLES = examples(README.read_text(encoding="utf-8"))


def test_the_readme_has_examples_of_every_command() -> None:
    assert len(README_EXAMPLES) > 10
    missing = set(commands()) - {example.command for example in README_EXAMPLES}
    assert not missing, f"commands with no ```sh example in README.md: {sorted(missing)}"


@pytest.mark.parametrize("example", README_EXAMPLES, ids=lambda e: e.line[:60])
def test_every_command_and_option_in_the_readme_exists(example: Example) -> None:
    available = commands()
    assert example.command in available, f"README runs `bench {example.command}`, which does not exist"
    known = {name for option in options_of(available[example.command]) for name in names(option)} | {"--help"}
    unknown = example.options - known
    assert not unknown, f"README: `{example.line}` uses {sorted(unknown)}, not in `bench {example.command} --help`"
    if example.concrete:
        # Parsed exactly as the shell would hand it over: option values of the wrong type fail here too.
        available[example.command].make_context(example.command, list(example.args))


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_in_help_is_in_the_readme(name: str) -> None:
    command = commands()[name]
    shown = CliRunner().invoke(cli.app, [name, "--help"], env=WIDE)
    assert shown.exit_code == 0, shown.output
    mentioned = {option for example in README_EXAMPLES if example.command == name for option in example.options}
    for option in options_of(command):
        assert option.opts[-1] in shown.output, f"{option.opts} of bench {name} is not in its --help"
        missing = unmentioned(option, mentioned)
        assert not missing, (
            f"`bench {name} {'/'.join(sorted(missing))}` is in --help but in no ```sh example of README.md"
        )


def test_the_readme_parser_reads_synopses_comments_and_chains() -> None:
    block = (
        "```sh\n"
        "bench run [--variants a,b] [--scenarios core|advice]\n"
        "          [-o FILE] [--no-check]\n"
        "bench report x.json --format md   # Markdown\n"
        "python3 -m venv .venv && .venv/bin/bench list\n"
        "```\n"
        "- in a list item:\n"
        "  ```sh\n"
        "  bench calibrate [--users 32]\n"
        "  ```\n"
    )
    found = examples(block)
    assert [(e.command, sorted(e.options), e.concrete) for e in found] == [
        ("run", ["--no-check", "--scenarios", "--variants", "-o"], False),
        ("report", ["--format"], True),
        ("list", [], True),
        ("calibrate", ["--users"], False),
    ]


def test_the_cheap_examples_really_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench list` and every `bench report FILE ...` example, on a golden results file."""
    monkeypatch.chdir(tmp_path)  # an example's `-o report.html` lands here, not in the checkout
    runner = CliRunner()
    ran = 0
    for example in README_EXAMPLES:
        if not example.concrete or example.command not in ("list", "report"):
            continue
        args = [example.command, *example.args]
        if example.command == "report":
            args[1] = str(GOLDEN)  # the README's file is one of its author's runs
        result = runner.invoke(cli.app, args, env=WIDE)
        assert result.exit_code == 0, f"`{example.line}`: {result.output}"
        assert result.output.strip(), example.line
        ran += 1
    assert ran >= 4
