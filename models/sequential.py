"""A student's ``nn.Sequential(...)`` text turned into the module it describes,
without running it: the text is parsed with ``ast`` and only calls of the
whitelisted layers below, with literal arguments, are accepted. Errors say
where (line, column) and what, in words a student can act on.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

MAX_CODE_CHARS = 20_000
MAX_LAYERS = 500

LAYERS: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in (
    nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm2d,
    nn.LocalResponseNorm, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Dropout,
    nn.Flatten, nn.Linear, nn.Identity, nn.Sequential)}
# Constructor keywords that choose where and how tensors live, not the architecture.
_NOT_ARCHITECTURE = {"device", "dtype"}

PRESETS = {
    "lenet5": ("LeNet-5", [1, 32, 32], """nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5),      # C1: 32 -> 28
    nn.Tanh(),
    nn.AvgPool2d(2),                     # S2: 28 -> 14
    nn.Conv2d(6, 16, kernel_size=5),     # C3: 14 -> 10
    nn.Tanh(),
    nn.AvgPool2d(2),                     # S4: 10 -> 5
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120),          # C5
    nn.Tanh(),
    nn.Linear(120, 84),                  # F6
    nn.Tanh(),
    nn.Linear(84, 10),                   # output
)"""),
    "alexnet_conv1": ("AlexNet CONV1", [3, 227, 227], """nn.Sequential(
    nn.Conv2d(3, 96, kernel_size=11, stride=4),   # 227 -> 55: (227 - 11) / 4 + 1
    nn.ReLU(inplace=True),
    nn.MaxPool2d(kernel_size=3, stride=2),        # 55 -> 27
)"""),
}


# Arguments PyTorch needs as whole numbers, with their least value; a tuple of them is accepted where the
# layer takes one per side (kernel_size=(3, 5)). Checked on the literals, before anything is built, so the
# message names the argument and where it is typed, not what PyTorch says when it fails later.
_WHOLE_NUMBERS = {name: 1 for name in (
    "in_channels", "out_channels", "in_features", "out_features", "num_features", "groups", "size",
    "kernel_size", "stride", "dilation", "output_size")} | {"padding": 0, "output_padding": 0}
_PER_SIDE = {"kernel_size", "stride", "dilation", "padding", "output_padding", "output_size"}
_PADDING_WORDS = {"same", "valid"}  # Conv2d(..., padding="same")


def _is_whole(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _check_argument(layer: str, name: str, value: Any, node: ast.expr) -> None:
    """Raises SequentialError where ``value`` is not what PyTorch needs for ``name``."""
    least = _WHOLE_NUMBERS.get(name)
    if least is None or value is None or (name == "padding" and value in _PADDING_WORDS):
        return
    if name in _PER_SIDE and isinstance(value, tuple) and value:
        bad = next((v for v in value if not (_is_whole(v, least) or (name == "output_size" and v is None))), None)
        if bad is None:
            return
        value = bad
    elif _is_whole(value, least):
        return
    expected = f"a whole number >= {least}" + (" (or a tuple of them)" if name in _PER_SIDE else "")
    if name == "padding":
        expected += ', or "same" or "valid"'
    raise SequentialError(f"{layer}: {name} must be {expected}; got {value!r}", node.lineno, node.col_offset + 1)


class SequentialError(ValueError):
    """What is wrong with the text, and where (1-based line and column, when known)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message)
        self.line, self.column = line, column


@dataclass
class Layer:
    name: str
    args: tuple
    kwargs: dict[str, Any]
    children: list[Layer] | None = None  # a nested Sequential


def _literal(node: ast.expr) -> Any:
    """A literal argument: numbers, booleans, None, strings, tuples and lists
    of them, and arithmetic on numbers (16 * 5 * 5) -- evaluated by walking
    the tree, never by eval."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool, str, type(None))):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Div)):
        left, right = _number(node.left), _number(node.right)
        if abs(left) > 1e9 or abs(right) > 1e9:
            raise SequentialError("that number is too large", node.lineno, node.col_offset + 1)
        if isinstance(node.op, (ast.FloorDiv, ast.Div)) and right == 0:
            raise SequentialError("division by zero", node.lineno, node.col_offset + 1)
        return {ast.Add: lambda: left + right, ast.Sub: lambda: left - right, ast.Mult: lambda: left * right,
                ast.FloorDiv: lambda: left // right, ast.Div: lambda: left / right}[type(node.op)]()
    raise SequentialError(f"only literal arguments (numbers, True/False, tuples) are allowed, not "
                          f"`{ast.unparse(node)[:40]}`", node.lineno, node.col_offset + 1)


def _number(node: ast.expr) -> int | float:
    value = _literal(node)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SequentialError(f"`{ast.unparse(node)[:40]}` is not a number", node.lineno, node.col_offset + 1)
    return value


def _layer_name(func: ast.expr) -> str | None:
    """``nn.Conv2d``, ``torch.nn.Conv2d`` or ``Conv2d`` -> 'Conv2d'."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = func.value
        if (isinstance(base, ast.Name) and base.id == "nn") or (
                isinstance(base, ast.Attribute) and base.attr == "nn" and isinstance(base.value, ast.Name)
                and base.value.id == "torch"):
            return func.attr
    return None


def _layer(node: ast.expr, count: list[int]) -> Layer:
    where = (getattr(node, "lineno", None), getattr(node, "col_offset", -1) + 1)
    if not isinstance(node, ast.Call):
        raise SequentialError(f"expected a layer such as nn.Conv2d(3, 6, 5), found `{ast.unparse(node)[:40]}`", *where)
    name = _layer_name(node.func)
    if name not in LAYERS:
        shown = ast.unparse(node.func)[:40]
        raise SequentialError(f"unknown layer `{shown}`; allowed layers: {', '.join(sorted(LAYERS))}", *where)
    count[0] += 1
    if count[0] > MAX_LAYERS:
        raise SequentialError(f"more than {MAX_LAYERS} layers", *where)
    if name == "Sequential":
        if node.keywords:
            raise SequentialError("nn.Sequential takes layers only, no keyword arguments", *where)
        return Layer(name, (), {}, [_layer(arg, count) for arg in node.args])
    signature = inspect.signature(LAYERS[name].__init__)
    accepted = [p for p in list(signature.parameters)[1:] if p not in _NOT_ARCHITECTURE]
    if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
        raise SequentialError(f"{name}: write the arguments out (no * or **)", *where)
    if len(node.args) > len(accepted):
        raise SequentialError(f"{name} takes at most {len(accepted)} positional arguments "
                              f"({', '.join(accepted)}), got {len(node.args)}", *where)
    for keyword in node.keywords:
        if keyword.arg not in accepted:
            raise SequentialError(f"{name} has no argument `{keyword.arg}`; it takes {', '.join(accepted)}",
                                  keyword.lineno, keyword.col_offset + 1)
    args, kwargs = tuple(_literal(a) for a in node.args), {k.arg: _literal(k.value) for k in node.keywords}
    for argument, value, value_node in [*zip(accepted, args, node.args),
                                        *((k.arg, kwargs[k.arg], k.value) for k in node.keywords)]:
        _check_argument(name, argument, value, value_node)
    return Layer(name, args, kwargs)


def parse(code: str) -> Layer:
    """The layer tree of ``code`` (raises SequentialError); nothing is executed."""
    if len(code) > MAX_CODE_CHARS:
        raise SequentialError(f"the text is over {MAX_CODE_CHARS:,} characters")
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as exc:
        raise SequentialError(f"syntax error: {exc.msg}", exc.lineno, exc.offset) from None
    except (ValueError, RecursionError, MemoryError):
        raise SequentialError("the text cannot be parsed (null bytes or nesting too deep)") from None
    statements = tree.body
    if len(statements) != 1 or not isinstance(statements[0], (ast.Expr, ast.Assign)):
        raise SequentialError("write one expression: nn.Sequential(layer, layer, ...), optionally `model = ...`")
    root = statements[0].value
    layer = _layer(root, [0])
    if layer.name != "Sequential":
        layer = Layer("Sequential", (), {}, [layer])
    return layer


def build(layer: Layer) -> nn.Module:
    """The module on the meta device (no memory, no random init); raises
    SequentialError where a layer's constructor refuses its arguments."""
    if layer.children is not None:
        return nn.Sequential(*(build(child) for child in layer.children))
    shown = ", ".join([*map(repr, layer.args), *(f"{k}={v!r}" for k, v in layer.kwargs.items())])
    try:
        with torch.device("meta"):
            module = LAYERS[layer.name](*layer.args, **layer.kwargs)
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, OverflowError) as exc:
        raise SequentialError(f"{layer.name}({shown}) cannot be built: {exc}") from None
    return module


def sequential_module(code: str) -> nn.Module:
    return build(parse(code)).eval()
