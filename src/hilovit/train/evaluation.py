"""``hilovit eval`` of weights without a training run: hilovit ``.safetensors`` (which record their architecture)
or official ``.pth`` files, on the test split of a classification dataset. Training checkpoints are evaluated by
:func:`hilovit.train.commands.evaluate_checkpoint`, which rebuilds their run."""

from __future__ import annotations

import json
import os
from typing import Any

from rich.progress import track
from torch.utils.data import DataLoader

from hilovit.data import build_dataset, build_transform, dataset_mean_std
from hilovit.models import create_model, load_official, read_arch
from hilovit.train.checkpoint import require_file
from hilovit.train.config import parse_yaml
from hilovit.train.distributed import setup
from hilovit.train.loop import check_model
from hilovit.train.metrics import evaluate
from hilovit.train.report import output_directory, plot_confusion
from hilovit.validation import MAPPING, interval


def evaluate_weights(
    weights: str | os.PathLike[str],
    *,
    model: str | None = None,
    model_kwargs: str | dict[str, Any] = "{}",
    data: str | None = None,
    img_size: int | None = None,
    batch_size: int = 256,
    output: str | os.PathLike[str] = "runs/eval",
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``weights`` on the test split of ``data``; writes ``confusion.png`` and ``eval.json``.

    A hilovit ``.safetensors`` file brings its architecture (model, classes, channels, image size); other weights
    need ``model`` and, when not the dataset's, ``model_kwargs``. ``model``, ``model_kwargs`` and ``img_size``
    override what the file records.
    """
    for name, value in (("img_size", img_size), ("batch_size", batch_size)):
        if value is not None:
            interval(1, integer=True).check(name, value)
    path = require_file(weights)
    out = output_directory(output)
    kwargs = parse_yaml(model_kwargs, "--model-kwargs") if isinstance(model_kwargs, str) else model_kwargs
    MAPPING.check("model_kwargs", kwargs)
    test_set = build_dataset(data, "test")
    recorded = read_arch(path) or {}
    arch = {"num_classes": len(test_set.classes), "in_chans": test_set.channels, **recorded, **kwargs}
    arch["model_name"] = model or recorded.get("model_name")
    if img_size is not None:
        arch["img_size"] = img_size
    if arch["model_name"] is None:
        raise ValueError(f"{path} records no architecture: pass --model (`hilovit models` lists them)")
    check_model(arch["model_name"], "classification")
    if arch["num_classes"] != len(test_set.classes) or arch["in_chans"] != test_set.channels:
        raise ValueError(
            f"{path} holds a model of {arch['num_classes']} classes and {arch['in_chans']} channel(s), dataset "
            f"{data or 'Fashion-MNIST'} has {len(test_set.classes)} and {test_set.channels}: pass --data with "
            "the dataset it was trained on"
        )
    net = create_model(**arch)
    load_official(net, path)
    mean, std = dataset_mean_std(build_dataset(data, "train"))
    test_set.transform = build_transform(train=False, img_size=arch.get("img_size", 224), mean=mean, std=std)
    env = setup(device)
    loader = DataLoader(test_set, batch_size=batch_size)
    batches = track(loader, description=f"evaluating {path.name}", total=len(loader), transient=True)
    result = evaluate(net.to(env.device), batches, len(test_set.classes), env)
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
