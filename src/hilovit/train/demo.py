"""The bundled demo: LITv2 with HiLo against the identical network with global MSA, same data, same time."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hilovit.train.config import TrainConfig, load_config
from hilovit.train.distributed import setup
from hilovit.train.loop import Trainer, measure_throughput
from hilovit.train.report import print_table

DEMO_RECIPE = "litv2_nano_fmnist"  # bundled
MSA_WINDOWS = [0, 0, 1, 1]  # window 1: every head attends globally (plain MSA) in both attention stages


def demo_configs(recipe: str | os.PathLike[str], overrides: list[str]) -> dict[str, TrainConfig]:
    """The HiLo run of ``recipe`` and its twin with global MSA in every attention stage."""
    hilo = load_config(recipe, overrides)
    msa = load_config(recipe, [*overrides, f"model_kwargs={{local_ws: {MSA_WINDOWS}}}"])
    hilo.output, msa.output = str(Path(hilo.output) / "hilo"), str(Path(msa.output) / "msa")
    return {"HiLo (LITv2)": hilo, "global MSA": msa}


def run_demo(recipe: str | os.PathLike[str] = DEMO_RECIPE, overrides: list[str] | None = None) -> dict[str, dict]:
    """Train both networks under the recipe's budget, then time their inference in one interleaved run."""
    rows, models = {}, {}
    for name, cfg in demo_configs(recipe, overrides or []).items():
        trainer = Trainer(cfg, setup(cfg.device))
        result = trainer.fit()
        rows[name] = result.summary() | {"params": sum(p.numel() for p in trainer.model.parameters())}
        models[name] = trainer
    first = next(iter(models.values()))
    speeds = measure_throughput(  # again, interleaved, so that both see the same machine state
        {name: trainer.model for name, trainer in models.items()},
        first.example_input(first.cfg.throughput_batch),
        repeats=9,
    )
    for name, speed in speeds.items():
        rows[name]["throughput_img_s"] = round(speed, 1)
    print_table(f"Fashion-MNIST test top-1 after the same training budget ({torch.get_num_threads()} threads)", rows)
    return rows
