"""``python -m hilovit.train RECIPE key=value ...``: the entry point torchrun launches."""

import argparse

from hilovit.cli import EPILOG, run_command
from hilovit.train.commands import add_train_arguments, train_command

parser = argparse.ArgumentParser(
    prog="python -m hilovit.train", description="Train a classifier (DDP under torchrun).", epilog=EPILOG
)
add_train_arguments(parser)
parser.set_defaults(run=train_command)
run_command(parser)
