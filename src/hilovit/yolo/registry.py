"""Make hilovit's YOLO modules usable by name in ultralytics model YAMLs.

ultralytics has no public module registry. ``ultralytics.nn.tasks.parse_model`` resolves a YAML row's module name
in its own module globals, and it computes channels only for modules it knows: classes named in two set literals
built *inside* the function (``base_modules``: the input channels ``c1`` come from the ``from`` layer and ``c2`` is
scaled by the width multiple and capped by ``max_channels``; ``repeat_modules``: the depth-scaled ``n`` goes into
the arguments) and a few ``m is C3k2`` / ``m is AIFI`` tests. Any other class gets its YAML arguments unchanged and
is assumed to keep the channel count.

Since the sets are locals, there is nothing to add to from outside. :func:`register` therefore (1) puts the hilovit
classes into the ``ultralytics.nn.tasks`` namespace and (2) recompiles ``parse_model`` from its own source with one
AST edit: every set literal that names a class in :data:`PARSED_LIKE`'s values also names the hilovit classes
parsed like it, and ``m is X`` becomes ``m in (X, *hilovit classes parsed like X)``. Each hilovit class is thereby
parsed exactly as the ultralytics class whose arguments it shares. The edit checks that it found every twin and
raises :class:`UnsupportedUltralyticsError` otherwise (the tests pin the behaviour on the installed version).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable

import torch
from torch import nn
from ultralytics.nn import tasks

from hilovit.attention import HiLo, HiLo2d
from hilovit.models.litv2 import ConvFFN, DWConv
from hilovit.yolo.aifi import AIFIHiLo
from hilovit.yolo.modules import C2fHiLo, C2HiLo, C3k2HiLo, ConvBNFFN, HiLoBlock, HiLoLayer

__all__ = ["PARSED_LIKE", "UnsupportedUltralyticsError", "build_parse_model", "patch_parse_model", "register_modules"]

# hilovit class -> the ultralytics class whose YAML argument layout (c1, c2, n, ...) it shares.
PARSED_LIKE: dict[type[nn.Module], str] = {
    HiLoBlock: "C2PSA",
    C2HiLo: "C2PSA",
    C3k2HiLo: "C3k2",
    C2fHiLo: "C2f",
    AIFIHiLo: "AIFI",
}
_PATCHED = "__hilovit_parse_model__"


class UnsupportedUltralyticsError(RuntimeError):
    """The installed ultralytics' ``parse_model`` does not have the layout :func:`patch_parse_model` edits."""


class _ParseLikeTwins(ast.NodeTransformer):
    """Adds the hilovit names next to their ultralytics twins in set literals and ``m is Twin`` tests."""

    def __init__(self, twins: dict[str, list[str]]) -> None:
        self.twins = twins
        self.edits: dict[str, int] = dict.fromkeys(twins, 0)  # set literals and tests extended, per twin

    def visit_Set(self, node: ast.Set) -> ast.Set:
        names = [element.id for element in node.elts if isinstance(element, ast.Name)]
        for twin in names:
            if twin in self.twins:
                node.elts.extend(ast.Name(id=ours, ctx=ast.Load()) for ours in self.twins[twin] if ours not in names)
                self.edits[twin] += 1
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        right = node.comparators[0]
        is_twin = isinstance(right, ast.Name) and right.id in self.twins
        if is_twin and len(node.ops) == 1 and isinstance(node.ops[0], ast.Is):
            names = [right.id, *self.twins[right.id]]
            self.edits[right.id] += 1
            choices = ast.Tuple(elts=[ast.Name(id=name, ctx=ast.Load()) for name in names], ctx=ast.Load())
            return ast.copy_location(ast.Compare(left=node.left, ops=[ast.In()], comparators=[choices]), node)
        return node


def build_parse_model(original: Callable, parsed_like: dict[type[nn.Module], str] = PARSED_LIKE) -> Callable:
    """``original`` (ultralytics' ``parse_model``) recompiled so that each class in ``parsed_like`` is parsed like
    its twin. Raises :class:`UnsupportedUltralyticsError` when a twin is missing or parse_model never names it."""
    twins: dict[str, list[str]] = {}
    for cls, twin in parsed_like.items():
        if not hasattr(tasks, twin):
            raise UnsupportedUltralyticsError(f"ultralytics.nn.tasks has no {twin!r} to parse {cls.__name__} like")
        twins.setdefault(twin, []).append(cls.__name__)
    lines, first_line = inspect.getsourcelines(original)
    editor = _ParseLikeTwins(twins)
    tree = ast.fix_missing_locations(editor.visit(ast.parse(textwrap.dedent("".join(lines)))))
    missing = [twin for twin, count in editor.edits.items() if count == 0]
    if missing:
        raise UnsupportedUltralyticsError(
            f"parse_model in ultralytics {_version()} names {missing} in no set literal or `m is` test; hilovit's "
            "YAML support expects the layout of ultralytics 8.4 (base_modules / repeat_modules frozensets)"
        )
    ast.increment_lineno(tree, first_line - 1)  # tracebacks point into tasks.py's own lines
    namespace: dict[str, object] = {}
    exec(compile(tree, inspect.getsourcefile(original) or "<parse_model>", "exec"), vars(tasks), namespace)
    patched = namespace[original.__name__]
    patched.__wrapped__ = original  # type: ignore[attr-defined]
    return patched  # type: ignore[return-value]


def patch_parse_model() -> Callable:
    """Install :func:`build_parse_model`'s ``parse_model`` in ``ultralytics.nn.tasks`` (once) and return it."""
    if not getattr(tasks.parse_model, _PATCHED, False):
        patched = build_parse_model(tasks.parse_model)
        setattr(patched, _PATCHED, True)
        tasks.parse_model = patched
    return tasks.parse_model


def _version() -> str:
    import ultralytics

    return ultralytics.__version__


def register_modules() -> None:
    """Expose the hilovit modules to model YAMLs by name and to restricted (``weights_only``) checkpoint loading."""
    for cls in (*PARSED_LIKE, HiLoLayer):
        setattr(tasks, cls.__name__, cls)
    patch_parse_model()
    torch.serialization.add_safe_globals([HiLo, HiLo2d, HiLoLayer, ConvBNFFN, ConvFFN, DWConv, *PARSED_LIKE])
