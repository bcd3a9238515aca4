"""Arithmetic over named numbers, for catalog values such as `total_deadline_ms + 3000`.

Parsed with `ast` and walked: numbers, the given names, + - * / and parentheses, nothing else
(no calls, attributes, subscripts or comprehensions: a catalog may come from a team's own
directory, and `eval` with its builtins removed is no sandbox)."""
from __future__ import annotations

import ast
import operator
from typing import Iterable, Mapping

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class ExprError(ValueError):
    pass


def parse(text: str, names: Iterable[str]) -> ast.expr:
    """The expression's tree, or ExprError saying what is not allowed."""
    allowed = set(names)
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise ExprError(f"{text!r}: not an expression ({exc.msg})") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            ops = [type(node.op)]
            if not set(ops) <= set(_BINARY) | set(_UNARY):
                raise ExprError(f"{text!r}: only + - * / are allowed")
        elif isinstance(node, ast.Name):
            if node.id not in allowed:
                raise ExprError(f"{text!r}: unknown name {node.id!r} (known: {', '.join(sorted(allowed))})")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ExprError(f"{text!r}: only numbers are allowed, not {node.value!r}")
        elif not isinstance(node, (ast.operator, ast.unaryop, ast.Load)):
            raise ExprError(f"{text!r}: {type(node).__name__} is not allowed (numbers, names, + - * / and parentheses)")
    return tree


def evaluate(text: str, values: Mapping[str, float]) -> float:
    tree = parse(text, values)

    def walk(node: ast.expr) -> float:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return float(values[node.id])
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.BinOp):
            try:
                return _BINARY[type(node.op)](walk(node.left), walk(node.right))
            except ZeroDivisionError:
                raise ExprError(f"{text!r}: division by zero") from None
        raise ExprError(f"{text!r}: {type(node).__name__} is not allowed")   # parse() let nothing else through
    return walk(tree)
