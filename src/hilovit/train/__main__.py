"""``python -m hilovit.train RECIPE key=value ...``: the entry point torchrun launches."""

import argparse

from hilovit.train.commands import add_train_arguments, train_command

parser = argparse.ArgumentParser(prog="python -m hilovit.train", description="Train a classifier (DDP under torchrun).")
add_train_arguments(parser)
train_command(parser.parse_args())
