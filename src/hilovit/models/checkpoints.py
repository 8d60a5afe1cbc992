"""Load official LITv2 checkpoints (and our own) strictly, with errors that say what is wrong.

Accepted sources, as a path (``.pth``/``.pt`` via ``torch.load(weights_only=True)``, ``.safetensors``)
or an in-memory mapping:

* classification checkpoints of the official code: ``{"model": state_dict, ...}``;
* mmdet / mmseg checkpoints: ``{"state_dict": state_dict, "meta": ...}`` whose backbone keys start with
  ``backbone.`` (the neck and head entries are dropped);
* plain state dicts, optionally with the key prefix of a wrapper: ``module.`` ((Distributed)DataParallel)
  or ``_orig_mod.`` (a model compiled with ``torch.compile``).

The model may be wrapped the same ways: the weights go into the module it wraps.

A classification checkpoint loaded into a dense-prediction backbone drops its ``norm.``/``head.``
entries, and a backbone checkpoint loaded into a classifier drops its ``norm0..3.`` output norms; every
other difference is an error (:class:`CheckpointMismatchError`) that lists the keys by name. Keys a caller
knowingly leaves at their initialisation are named in ``allow_missing``; nothing is skipped silently.

Files hilovit writes carry their architecture, ``{"model_name": <registry name>, **constructor kwargs}``: in the
safetensors metadata (:func:`save_safetensors` with ``arch``) or a training checkpoint's ``arch`` entry;
:func:`read_arch` reads it back and :func:`~hilovit.models.create_model_from_file` rebuilds the model. A file that
is no checkpoint at all (text, say) is named as such before anything tries to unpickle it (:func:`sniff_checkpoint`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import Tensor, nn

__all__ = [
    "NUMPY_STATE_GLOBALS",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointMismatchError",
    "LoadResult",
    "check_state_dict",
    "load_official",
    "official_state_dict",
    "read_arch",
    "read_checkpoint",
    "save_safetensors",
    "sniff_checkpoint",
    "write_atomically",
]

Source = str | os.PathLike[str] | Mapping[str, object]

# Entries that only one of the two forms has: the classifier's final norm and head, the backbone's
# per-output norms. They are dropped when the target model has no such entry.
_FORM_SPECIFIC = re.compile(r"^(norm\d*|head)\.")
_LISTED = 20  # keys named per category in an error message; the exception keeps all of them
# Key prefixes that wrappers add to the wrapped module's keys: (Distributed)DataParallel, torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# The safetensors metadata entry that holds the architecture (JSON) of the weights in the file.
ARCH_METADATA_KEY = "hilovit.arch"
_SAFETENSORS_HEADER_LIMIT = 100 * 2**20  # safetensors' own limit on the JSON header
#: What ``torch.load(weights_only=True)`` needs, besides tensors and plain containers, to read numpy's random state
#: (an ndarray) in a training checkpoint; nothing that runs code.
NUMPY_STATE_GLOBALS = [np.ndarray.__reduce__(np.zeros(0))[0], np.ndarray, np.dtype, type(np.dtype(np.uint32))]


class CheckpointError(ValueError):
    """Base class of the checkpoint errors raised by hilovit."""


class CheckpointFormatError(CheckpointError):
    """The file or object is not a checkpoint hilovit can read."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's keys or shapes do not match the model's.

    Attributes:
        missing: model keys the checkpoint lacks.
        unexpected: checkpoint keys the model lacks.
        mismatched: ``(key, checkpoint_shape, model_shape)`` for keys whose shapes differ.
    """

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
        model_name: str,
    ) -> None:
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"checkpoint does not match {model_name}:"]
        for title, items in (
            ("missing from the checkpoint", missing),
            ("unexpected in the checkpoint", unexpected),
            (
                "shape mismatch (checkpoint vs model)",
                [f"{k}: {tuple(a)} vs {tuple(b)}" for k, a, b in mismatched],
            ),
        ):
            if items:
                shown = ", ".join(items[:_LISTED])
                more = f" ... and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
                lines.append(f"  {len(items)} {title}: {shown}{more}")
        hint = _mismatch_hint(missing, unexpected, mismatched)
        if hint:
            lines.append(f"  hint: {hint}")
        super().__init__("\n".join(lines))


def _mismatch_hint(
    missing: list[str], unexpected: list[str], mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
) -> str:
    """Advice for a key prefix on one side only and for the two common, expected differences; none when
    anything else differs too."""
    if not mismatched and (prefix := _extra_prefix(missing, unexpected)):
        return (
            f"the model's keys have the prefix {prefix!r} that the checkpoint's lack: load into the module that "
            f"holds the weights (for a timm features_only model, model.model)"
        )
    if not mismatched and (prefix := _extra_prefix(unexpected, missing)):
        return (
            f"the checkpoint's keys have the prefix {prefix!r} that the model's lack: remove it, "
            f"{{k.removeprefix({prefix!r}): v for k, v in state_dict.items()}}"
        )
    prefixes = {key.split(".", 1)[0] for key in missing}
    if unexpected or (missing and mismatched):
        return ""
    if prefixes and all(re.fullmatch(r"norm\d", p) for p in prefixes):
        return (
            "a classification checkpoint has no output norms for the backbone; pass "
            "allow_missing=('norm',) to keep them at their initialisation (they train with the detector)"
        )
    if prefixes and prefixes <= {"norm", "head"}:
        return "a backbone checkpoint has no classifier; pass allow_missing=('norm.', 'head.') to keep it initialised"
    if mismatched and all(key.startswith("head.") for key, _, _ in mismatched):
        return (
            "only the classifier size differs: build the model with the checkpoint's num_classes, then reset_classifier"
        )
    return ""


def _extra_prefix(prefixed: list[str], plain: list[str]) -> str:
    """The prefix (ending in a dot) of all keys in ``prefixed`` that makes them keys of ``plain``; "" if none."""
    if not prefixed or not plain:
        return ""
    others = set(plain)
    first = prefixed[0]
    for end in (i + 1 for i, char in enumerate(first) if char == "."):
        prefix = first[:end]
        if all(k.startswith(prefix) and k[end:] in others for k in prefixed):
            return prefix
    return ""


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_official` did besides copying tensors.

    Attributes:
        missing: model keys left at their initialisation (allowed through ``allow_missing``).
        dropped: checkpoint keys that belong to another form or task (heads, necks, output norms).
    """

    missing: tuple[str, ...]
    dropped: tuple[str, ...]


def sniff_checkpoint(path: str | os.PathLike[str]) -> str:
    """What the bytes of ``path`` are: ``"safetensors"``, ``"torch"`` (a ``torch.save`` zip or legacy pickle).

    Raises:
        FileNotFoundError: no such file.
        CheckpointFormatError: a directory, or a file of neither kind (e.g. text), named with what it starts with.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file not found: '{path}'")
    if not path.is_file():
        raise CheckpointFormatError(f"'{path}' is not a file; expected a checkpoint file (.pth, .pt, .safetensors)")
    with path.open("rb") as file:
        head = file.read(24)
    # safetensors: the JSON header's length (8 bytes, little-endian), then the header itself
    if len(head) > 8 and 0 < int.from_bytes(head[:8], "little") <= _SAFETENSORS_HEADER_LIMIT and head[8:9] == b"{":
        return "safetensors"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):  # torch.save's zip, or a legacy pickle
        return "torch"
    if not head:
        shown = "an empty file"
    elif all(char.isprintable() or char.isspace() for char in head.decode("ascii", errors="replace")):
        shown = f"text, starting {head.decode('ascii')!r}"
    else:
        shown = "binary data of an unknown format"
    raise CheckpointFormatError(
        f"'{path}' is not a valid checkpoint: it is {shown}; expected a file written by torch.save (.pt, .pth) "
        "or a safetensors file"
    )


def _load_file(path: Path) -> object:
    if sniff_checkpoint(path) == "safetensors":
        try:
            return safetensors.torch.load_file(path)
        except safetensors.SafetensorError as err:
            raise CheckpointFormatError(f"'{path}' is not a valid safetensors checkpoint: {err}") from err
    try:
        with torch.serialization.safe_globals(NUMPY_STATE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = next((ln.strip() for ln in str(err).splitlines() if "Unsupported" in ln), str(err))
        if "Unsupported global" in reason:
            raise CheckpointFormatError(
                f"'{path}' pickles Python objects besides tensors, which torch.load(weights_only=True) "
                f"refuses ({reason}). If you trust the file, re-save its state dict once: "
                "torch.save(torch.load(path, weights_only=False)['model'], new_path)"
            ) from err
        raise CheckpointFormatError(f"'{path}' is not a valid checkpoint (corrupt or not made by torch.save)") from err
    except Exception as err:  # torch.load fails on garbage with many exception types
        raise CheckpointFormatError(
            f"'{path}' is not a valid checkpoint (corrupt, truncated or not made by torch.save): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'empty or truncated file'}"
        ) from err


def read_arch(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The architecture a hilovit file records, ``{"model_name": <registry name>, **constructor kwargs}``
    (``hilovit.models.create_model(**arch)`` rebuilds the model), or None when the file has none.

    Reads the metadata of a safetensors file written by :func:`save_safetensors`, or the ``arch`` entry of a
    training checkpoint (loaded with ``weights_only=True``).
    """
    path = Path(path)
    if sniff_checkpoint(path) == "safetensors":
        try:
            with safetensors.safe_open(path, framework="pt") as file:
                text = (file.metadata() or {}).get(ARCH_METADATA_KEY)
        except safetensors.SafetensorError as err:
            raise CheckpointFormatError(f"'{path}' is not a valid safetensors checkpoint: {err}") from err
        if text is None:
            return None
        try:
            arch = json.loads(text)
        except json.JSONDecodeError as err:
            raise CheckpointFormatError(f"'{path}': its {ARCH_METADATA_KEY} metadata is not JSON ({err})") from err
    else:
        state = _load_file(path)
        arch = state.get("arch") if isinstance(state, Mapping) else None
        if arch is None:
            return None
    if not isinstance(arch, dict) or not isinstance(arch.get("model_name"), str):
        raise CheckpointFormatError(f"'{path}' records an architecture without a model name: {arch!r}")
    return arch


def _unwrap(obj: object, origin: str) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{origin} holds a {type(obj).__name__}, expected a dict of tensors")
    if not all(isinstance(v, Tensor) for v in obj.values()):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                return _unwrap(obj[key], f"{origin}['{key}']")
        raise CheckpointFormatError(
            f"{origin} is neither a state dict nor a dict with a 'model' (classification) or 'state_dict' "
            f"(mmdet/mmseg) entry; its keys are {sorted(map(str, obj))[:_LISTED]}"
        )
    state = {str(k): v for k, v in obj.items()}
    while state and (prefix := next((p for p in _WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)):
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def _unwrap_model(model: nn.Module) -> nn.Module:
    """The module that holds the weights under their own names, inside torch.compile's and
    (Distributed)DataParallel's wrappers (which share its parameters)."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


def read_checkpoint(source: Source) -> dict[str, Tensor]:
    """Read ``source`` (a path or a mapping) and return its model state dict, wrappers unpacked.

    Detector / segmentor checkpoints come back with their ``backbone.`` prefix intact; see
    :func:`official_state_dict` for the form a LITv2 model loads.
    """
    if isinstance(source, Mapping):
        return _unwrap(source, "the checkpoint dict")
    path = Path(source)
    return _unwrap(_load_file(path), f"'{path}'")


def official_state_dict(source: Source, model: nn.Module) -> tuple[dict[str, Tensor], tuple[str, ...]]:
    """The entries of ``source`` meant for ``model``, and the keys dropped on the way.

    Keeps only the ``backbone.`` entries of detector/segmentor checkpoints (prefix removed) and drops the
    classification head / output norms that ``model`` does not have. Shapes are not checked here.
    """
    state = read_checkpoint(source)
    dropped: list[str] = []
    if any(k.startswith("backbone.") for k in state):
        dropped += [k for k in state if not k.startswith("backbone.")]
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    own = model.state_dict()
    foreign = [k for k in state if k not in own and _FORM_SPECIFIC.match(k)]
    dropped += foreign
    for key in foreign:
        del state[key]
    return state, tuple(dropped)


def _prefixes(allow_missing: str | Iterable[str]) -> tuple[str, ...]:
    """``allow_missing`` as a tuple of key prefixes; a single string is one prefix."""
    prefixes = (allow_missing,) if isinstance(allow_missing, str) else tuple(allow_missing)
    if not all(isinstance(p, str) for p in prefixes):
        raise TypeError(f"allow_missing must be a key prefix or an iterable of them (str), got {allow_missing!r}")
    return prefixes


def check_state_dict(
    state: Mapping[str, Tensor],
    model: nn.Module,
    *,
    allow_missing: str | Iterable[str] = (),
    allow_reshaped: str | Iterable[str] = (),
) -> tuple[str, ...]:
    """Check that ``state`` has exactly ``model``'s keys and shapes, and return the model keys it lacks.

    Args:
        state: the state dict, e.g. from :func:`official_state_dict`.
        model: the model it is meant for.
        allow_missing: key prefixes that ``state`` may lack (a single string is one prefix).
        allow_reshaped: key prefixes whose shapes may differ from the model's.

    Raises:
        CheckpointMismatchError: keys are missing, unexpected or of the wrong shape (all listed).
    """
    expected = model.state_dict()
    may_miss, may_reshape = _prefixes(allow_missing), _prefixes(allow_reshaped)
    absent = [k for k in expected if k not in state]
    allowed = [k for k in absent if may_miss and k.startswith(may_miss)]
    missing = [k for k in absent if k not in allowed]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        (k, tuple(v.shape), tuple(expected[k].shape))
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape and not (may_reshape and k.startswith(may_reshape))
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched, type(model).__name__)
    return tuple(allowed)


def load_official(model: nn.Module, source: Source, *, allow_missing: str | Iterable[str] = ()) -> LoadResult:
    """Load an official (or hilovit) LITv2 checkpoint into ``model``, strictly.

    Args:
        model: the model to fill, e.g. :class:`~hilovit.models.LITv2` or
            :class:`~hilovit.models.LITv2Backbone`, also inside ``torch.compile`` or (Distributed)DataParallel.
        source: a checkpoint path or an already loaded checkpoint / state dict.
        allow_missing: key prefixes the checkpoint may lack (a single string is one prefix); those entries
            keep their current values and are reported in the result (e.g. ``("norm",)`` for a backbone's
            output norms when loading ImageNet weights).

    Raises:
        FileNotFoundError: ``source`` names no file.
        CheckpointFormatError: the file is corrupt, truncated or holds no state dict.
        CheckpointMismatchError: keys are missing, unexpected or of the wrong shape (all listed).
    """
    model = _unwrap_model(model)
    state, dropped = official_state_dict(source, model)
    allowed = check_state_dict(state, model, allow_missing=allow_missing)
    # Allowed-missing entries keep their current values, so the load itself stays strict.
    model.load_state_dict({**model.state_dict(), **state}, strict=True)
    return LoadResult(missing=allowed, dropped=dropped)


def save_safetensors(
    source: nn.Module | Mapping[str, Tensor], path: str | os.PathLike[str], arch: Mapping[str, Any] | None = None
) -> Path:
    """Write a model's state dict (or a state dict) to ``path`` as safetensors, atomically.

    Args:
        source: the model or its state dict.
        path: the file to write.
        arch: ``{"model_name": <registry name>, **constructor kwargs}``, stored (JSON) in the file's metadata so
            that :func:`~hilovit.models.create_model_from_file` rebuilds the model from the file alone.

    The file is written next to ``path`` under a temporary name and moved into place, so a reader never
    sees a partial file. Returns the path written.
    """
    path = Path(path)
    if path.is_dir():
        example = path / "model.safetensors"
        raise IsADirectoryError(f"path {path} is a directory: expected a file path such as {example}")
    metadata = {"format": "pt"}
    if arch is not None:
        if not isinstance(arch.get("model_name"), str):
            raise ValueError(f"arch must name the model as arch['model_name'] (a string), got {dict(arch)!r}")
        try:
            metadata[ARCH_METADATA_KEY] = json.dumps(dict(arch), sort_keys=True)
        except TypeError as err:
            raise ValueError(f"arch must hold JSON values (numbers, strings, lists, dicts): {err}") from err
    state = source.state_dict() if isinstance(source, nn.Module) else source
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write '{path}': directory '{path.parent}' does not exist")
    return write_atomically(path, lambda tmp: safetensors.torch.save_file(tensors, tmp, metadata=metadata))


def write_atomically(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, flush it to disk, then rename it to ``path``: a reader
    (also after a crash or power loss) sees the old file or the complete new one, never a partial one; on failure
    (or an interrupt) the temporary file is removed and the exception propagates."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(Path(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
