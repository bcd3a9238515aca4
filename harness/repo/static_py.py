"""Python test files read statically with `ast`: the tests they define, their pytest marks, and the
claims named by `@pytest.mark.claim("X-6.5.1")` on a function, on its class, or in `pytestmark`.
Nothing is imported or run."""
from __future__ import annotations

import ast
from pathlib import PurePosixPath
from typing import Optional

from harness.repo.model import TestItem


def scan_python(rel: str, text: str) -> list[TestItem]:
    """The tests of one file (`rel`: its path relative to the repository). A file that does not
    parse defines nothing here (pytest will report it as a collection error)."""
    try:
        tree = ast.parse(text, filename=rel)
    except (SyntaxError, ValueError):
        return []
    category = str(PurePosixPath(rel).parent)
    module_marks = _pytestmark(tree.body)
    out: list[TestItem] = []

    def visit(body: list[ast.stmt], prefix: list[str], inherited: list[tuple[str, list[str]]]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                marks = inherited + [m for d in node.decorator_list if (m := _mark(d))]
                out.append(TestItem(id="::".join([rel, *prefix, node.name]), file=rel,
                                    name="::".join([*prefix, node.name]), category=category,
                                    marks=_names(marks), claims=_claims(marks), line=node.lineno))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                marks = inherited + [m for d in node.decorator_list if (m := _mark(d))] + _pytestmark(node.body)
                visit(node.body, [*prefix, node.name], marks)

    visit(tree.body, [], module_marks)
    return out


def _mark(node: ast.expr) -> Optional[tuple[str, list[str]]]:
    """`pytest.mark.NAME`, `mark.NAME` or either called with arguments -> (NAME, string arguments)."""
    args: list[str] = []
    if isinstance(node, ast.Call):
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        args += [k.value.value for k in node.keywords
                 if k.arg == "id" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)]
        node = node.func
    if isinstance(node, ast.Attribute) and _is_mark(node.value):
        return node.attr, args
    return None


def _is_mark(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "mark") or (
        isinstance(node, ast.Attribute) and node.attr == "mark")


def _pytestmark(body: list[ast.stmt]) -> list[tuple[str, list[str]]]:
    for node in body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return [m for v in values if (m := _mark(v))]
    return []


def _names(marks: list[tuple[str, list[str]]]) -> list[str]:
    return sorted({name for name, _ in marks} - {"claim", "parametrize"})


def _claims(marks: list[tuple[str, list[str]]]) -> list[str]:
    return list(dict.fromkeys(a for name, args in marks if name == "claim" for a in args))
