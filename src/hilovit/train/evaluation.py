"""``hilovit eval``: top-1/top-5 and the confusion matrix of a training checkpoint or of given weights."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import timm
from torch.utils.data import DataLoader

from hilovit.data import build_dataset, build_transform, dataset_mean_std
from hilovit.models import load_official
from hilovit.train.checkpoint import ForeignCheckpointError, check_task, load_train_checkpoint, require_file
from hilovit.train.config import parse_yaml
from hilovit.train.distributed import setup
from hilovit.train.loop import check_model
from hilovit.train.metrics import evaluate
from hilovit.train.report import output_directory, plot_confusion
from hilovit.validation import MAPPING, interval


def _train_checkpoint(path: Path) -> dict[str, Any] | None:
    """The classification training checkpoint at ``path``, or None for other weights (safetensors, official
    ``.pth``: load_official reads those and reports their errors). A missing or corrupt file, or another task's
    checkpoint, is an error."""
    if require_file(path).suffix == ".safetensors":
        return None
    try:
        state = load_train_checkpoint(path)
    except ForeignCheckpointError:
        return None
    check_task(state, "classification", path)
    return state


def evaluate_weights(
    weights: str | os.PathLike[str],
    *,
    model: str | None = None,
    model_kwargs: str | dict[str, Any] = "{}",
    data: str | None = None,
    img_size: int | None = None,
    batch_size: int = 256,
    output: str | os.PathLike[str] = "runs/eval",
) -> dict[str, Any]:
    """Evaluate ``weights`` on the test split of ``data``; writes ``confusion.png`` and ``eval.json``.

    A training checkpoint brings its architecture (and EMA weights when it has them); other weights (hilovit
    ``.safetensors``, official ``.pth``) need ``model`` and, when not the dataset's, ``model_kwargs``.
    """
    path = Path(weights)
    for name, value in (("img_size", img_size), ("batch_size", batch_size)):
        if value is not None:
            interval(1, integer=True).check(name, value)
    state = _train_checkpoint(path)
    out = output_directory(output)
    kwargs = parse_yaml(model_kwargs, "--model-kwargs") if isinstance(model_kwargs, str) else model_kwargs
    MAPPING.check("model_kwargs", kwargs)
    test_set = build_dataset(data, "test")
    arch = {"model_name": model, "num_classes": len(test_set.classes), "in_chans": test_set.channels, **kwargs}
    source: Any = path
    if state is not None:
        arch = {**state["arch"], **({"model_name": model} if model else {}), **kwargs}
        source = state["ema"] or state["model"]
        img_size = state["config"]["img_size"] if img_size is None else img_size
        mean, std = state["normalization"]
    else:
        mean, std = dataset_mean_std(build_dataset(data, "train"))
    if arch["model_name"] is None:
        known = ", ".join(timm.list_models("litv2_*"))
        raise ValueError(f"{path} is not a training checkpoint: pass --model (one of {known})")
    check_model(arch["model_name"])
    net = timm.create_model(**arch)
    load_official(net, source)
    test_set.transform = build_transform(train=False, img_size=img_size or 224, mean=mean, std=std)
    env = setup()
    net = net.to(env.device)
    result = evaluate(net, DataLoader(test_set, batch_size=batch_size), len(test_set.classes), env)
    plot_confusion(result.confusion, test_set.classes, out / "confusion.png")
    report = {
        "weights": str(path),
        "arch": arch,
        "images": result.count,
        "top1": round(result.top1, 3),
        "top5": round(result.top5, 3),
        "loss": round(result.loss, 5),
    }
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    return report
