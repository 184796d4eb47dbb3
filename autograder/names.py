"""Which names a piece of Python reads and binds, statically (for the test-cell planner).

:func:`loaded_names` follows execution order -- a name a cell binds before reading it is its
own -- and :func:`bound_names` lists what a top-level statement binds or changes in place.
"""

from __future__ import annotations

import ast
import builtins

_BUILTINS = set(dir(builtins))


def _nested_loads(tree: ast.AST) -> set[str]:
    """Names read inside a function, lambda or comprehension, less its own parameters and
    comprehension variables (not order-aware: it runs later, when the cell has bound more)."""
    loads, params = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.add(node.id)
        elif isinstance(node, ast.arg):
            params.add(node.arg)
        elif isinstance(node, ast.comprehension):
            params |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return loads - params


class _Free(ast.NodeVisitor):
    """Names a piece of code reads before it binds them itself, in execution order."""

    def __init__(self):
        self.assigned, self.free = set(), set()

    def _load(self, names):
        self.free |= set(names) - self.assigned

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self._load([node.id])
        else:
            self.assigned.add(node.id)

    def visit_Assign(self, node):
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node):
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._load([node.target.id])
        self.visit(node.target)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node):
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node):
        self.visit(node.iter)
        self.visit(node.target)
        for child in node.body + node.orelse:
            self.visit(child)

    def visit_With(self, node):
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
        for child in node.body:
            self.visit(child)

    def visit_FunctionDef(self, node):
        for child in node.decorator_list + node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(child)
        self._load(_nested_loads(node) - {node.name})
        self.assigned.add(node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._load(_nested_loads(node))

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_Lambda

    def visit_Import(self, node):
        self.assigned |= {(a.asname or a.name).split(".")[0] for a in node.names}

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node):
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.assigned.add(node.name)
        for child in node.body:
            self.visit(child)


def loaded_names(tree: ast.AST) -> set[str]:
    """Names a piece of code reads from outside before binding them itself (builtins left out)."""
    visitor = _Free()
    visitor.visit(tree)
    return visitor.free - _BUILTINS


def bound_names(stmt: ast.stmt) -> set[str]:
    """Top-level names a statement binds (or changes in place, ``a[k] = v``)."""
    names = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
            root = node
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name):
                names.add(root.id)
    return names
