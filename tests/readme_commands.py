"""The shell commands of the README, as a user would type them, and how the README test runs them.

:func:`readme_commands` reads every fenced block tagged bash / sh / shell / console and returns each command with
its README line. :func:`runnable_argv` turns one into an argument vector with its :class:`Rule`'s tiny budget:
``hilovit ...`` and ``python -m hilovit ...`` become ``<this python> -m hilovit ...``, ``torchrun ...`` the
torchrun beside this python, ``python benchmarks/x.py ...`` the checkout's script. :func:`run` runs it: hilovit
commands and scripts in this process (importing torch and hilovit once, not once per command), ``torchrun`` as
the subprocess it has to be.
"""

from __future__ import annotations

import io
import os
import re
import runpy
import shlex
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hilovit.cli import build_parser, run_command

REPO = Path(__file__).resolve().parents[1]
SHELL_TAGS = frozenset({"bash", "sh", "shell", "console"})
#: programs whose lines are instructions, not commands the test runs, and why
SKIPPED_PROGRAMS = {
    "make": "make targets run the demo or the whole suite (`make test` runs this very test)",
    "pip": "installation instructions",
}
SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"})
_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHONS = ("python", "python3")
_HILOVIT_MODULES = ("hilovit", "hilovit.cli")


@dataclass(frozen=True)
class Command:
    """One command of a README shell block: the line it starts on, its text as written and its words
    (shell-split, without the comment, the ``$`` prompt and leading ``NAME=value`` assignments, which are in
    ``env``)."""

    line: int
    text: str
    words: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def program(self) -> str:
        return self.words[0]

    @property
    def hilovit_start(self) -> int | None:
        """Where the hilovit words (``detect train ...``) start in :attr:`words`, for ``hilovit ...``,
        ``python -m hilovit ...`` and ``torchrun ... -m hilovit ...``; None for other programs."""
        if self.program == "hilovit":
            return 1
        if self.program in (*_PYTHONS, "torchrun") and "-m" in self.words:
            at = self.words.index("-m")
            if self.words[at + 1 : at + 2] and self.words[at + 1] in _HILOVIT_MODULES:
                return at + 2
        return None

    @property
    def rule_words(self) -> tuple[str, ...]:
        """What a :class:`Rule`'s prefix matches: the hilovit words, the script and its arguments for
        ``python SCRIPT ...``, else all words."""
        start = self.hilovit_start
        if start is None:
            start = 1 if self.program in _PYTHONS else 0
        return self.words[start:]


@dataclass(frozen=True)
class Rule:
    """How the test runs the README commands whose :attr:`Command.rule_words` start with ``prefix`` (hilovit
    words such as ``"detect train"``, or a script path), and ``why``.

    ``extra`` is appended (argparse keeps the last value of an option given twice, and the training commands'
    flags win over ``key=value`` overrides). ``overrides`` (``key=value`` of a training recipe) are put right
    after the command's own positional words: after the README's own overrides, so that they win, and before any
    option, which may take an optional value (``--resume``). ``when`` limits the rule to commands holding that
    word. ``replace`` holds ``(text, by)`` pairs replaced in every word: a path only the user has
    (``/path/to/imagenet``), a process count."""

    prefix: str
    why: str
    extra: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    when: str | None = None
    replace: tuple[tuple[str, str], ...] = ()

    def matches(self, command: Command) -> bool:
        prefix = tuple(self.prefix.split())
        return command.rule_words[: len(prefix)] == prefix and (self.when is None or self.when in command.words)


def _block_commands(lines: list[tuple[int, str]], tag: str) -> list[Command]:
    commands, pending, start = [], "", 0
    for number, raw in lines:
        text = raw.strip()
        if tag == "console" and not pending:  # a console block shows prompts and output: `$ ` lines are commands
            if not text.startswith("$ "):
                continue
            text = text[2:]
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text, pending = pending + text, ""
        words = shlex.split(text, comments=True)
        env = {}
        while len(words) > 1 and _ENV_ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if words:
            commands.append(Command(start, text, tuple(words), env))
    if pending:
        raise ValueError(f"README line {start}: the command ends with a line continuation `\\` and nothing after it")
    return commands


def readme_commands(text: str) -> list[Command]:
    """Every command of the fenced shell blocks of ``text`` (a README), in order."""
    commands: list[Command] = []
    block: list[tuple[int, str]] | None = None
    fence, tag = "", ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if block is None:
            if match:
                block, fence, tag = [], match[1], match[2].lower()
        elif match and match[1].startswith(fence) and not match[2]:
            if tag in SHELL_TAGS:
                commands.extend(_block_commands(block, tag))
            block = None
        else:
            block.append((number, line))
    return commands


def runnable_argv(command: Command, rule: Rule) -> list[str]:
    """The subprocess argument vector of ``command`` with ``rule``'s overrides and extra arguments.

    Raises:
        ValueError: the program is not one the test knows how to run, or the line uses shell operators.
    """
    operators = sorted(SHELL_OPERATORS.intersection(command.words))
    if operators:
        raise ValueError(
            f"README line {command.line}: `{command.text}` uses shell operator(s) {', '.join(operators)}; "
            "write one command per line"
        )
    words = list(command.words)
    for text, by in rule.replace:
        words = [word.replace(text, by) for word in words]
    if command.program == "hilovit":
        words[:1] = [sys.executable, "-m", "hilovit"]
    elif command.program == "torchrun":
        words[0] = str(Path(sys.executable).with_name("torchrun"))
    elif command.program in _PYTHONS:
        words[0] = sys.executable
        if len(words) > 1 and words[1].endswith(".py"):  # a script of the checkout (benchmarks/...)
            words[1] = str(REPO / words[1])
    else:
        raise ValueError(f"README line {command.line}: no way to run program {command.program!r} in `{command.text}`")
    if rule.overrides:
        first = len(words) - len(command.rule_words)
        option = next((i for i in range(first, len(words)) if words[i].startswith("-")), len(words))
        words[option:option] = rule.overrides
    return [*words, *rule.extra]


def rule_for(command: Command, rules: Sequence[Rule]) -> Rule | None:
    """The most specific rule that matches ``command``: one with ``when`` before one without, then the
    longest prefix."""
    matching = [rule for rule in rules if rule.matches(command)]
    return max(matching, key=lambda rule: (rule.when is not None, len(rule.prefix.split())), default=None)


def read_readme() -> str:
    return (REPO / "README.md").read_text()


@dataclass(frozen=True)
class Outcome:
    """What running a command gave: its exit status (or why there is none), stdout and stderr."""

    status: int | str
    stdout: str
    stderr: str


@contextmanager
def _inside(folder: Path, env: Mapping[str, str], argv: Sequence[str]) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """This process as a fresh one would be: working folder ``folder``, environment exactly ``env``, ``sys.argv``
    ``argv``, stdout and stderr captured; all of them, and torch's thread count, restored afterwards."""
    cwd, environ, old_argv, threads = os.getcwd(), dict(os.environ), sys.argv, torch.get_num_threads()
    stdout, stderr = io.StringIO(), io.StringIO()
    os.chdir(folder)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(argv)
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            yield stdout, stderr
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        sys.argv = old_argv
        torch.set_num_threads(threads)


def _in_process(argv: Sequence[str], folder: Path, env: Mapping[str, str]) -> Outcome:
    """Run ``<python> -m hilovit ...`` through :func:`hilovit.cli.run_command`, ``<python> SCRIPT ...`` with
    :func:`runpy.run_path`, both as ``__main__`` would."""
    module = argv[1] == "-m"
    status: int | str = 0
    with _inside(folder, env, argv[2:] if module else argv[1:]) as (stdout, stderr):
        try:
            if module:
                run_command(build_parser(), argv[3:])
            else:
                runpy.run_path(argv[1], run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code
            status = 0 if code is None else code if isinstance(code, int) else 1
            if isinstance(code, str):
                print(code, file=sys.stderr)
        except Exception as error:  # a traceback, as the process would have printed it
            status = f"uncaught {type(error).__name__}"
            traceback.print_exc()
    return Outcome(status, stdout.getvalue(), stderr.getvalue())


def run(argv: Sequence[str], folder: Path, env: Mapping[str, str], timeout_s: float) -> Outcome:
    """Run ``argv`` (from :func:`runnable_argv`) in ``folder`` with environment ``env``: hilovit commands and
    Python scripts in this process, anything else (``torchrun``) as a subprocess that may take ``timeout_s``."""
    hilovit = [["-m", module] for module in _HILOVIT_MODULES]
    if argv[0] == sys.executable and (argv[1].endswith(".py") or list(argv[1:3]) in hilovit):
        return _in_process(argv, folder, env)
    try:
        done = subprocess.run(argv, cwd=folder, env=dict(env), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as timeout:
        return Outcome(f"timeout after {timeout_s} s", str(timeout.stdout), str(timeout.stderr))
    return Outcome(done.returncode, done.stdout, done.stderr)
