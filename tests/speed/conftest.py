import pytest
from rich.console import Console

from hilovit.grammar import Parser
from hilovit.speed.cli import add_bench_commands


@pytest.fixture
def run():
    """Run a `hilovit` command line through hilovit.speed.cli's argparse wiring; returns the command's result."""
    parser = Parser(prog="hilovit")
    add_bench_commands(parser.add_subparsers(dest="command", required=True))

    def run_command(argv):
        args = parser.parse_args(argv)
        return args.run(args, Console(width=200, quiet=True))

    return run_command
