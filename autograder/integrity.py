"""The integrity rule, checked on the learner's source by the grader (never in their kernel).

A graded function must be the learner's own work: it may not reach, directly or through any
helper, assignment, container, default argument or decorator of the notebook, the ``idivkit``
code it reimplements (plain values such as ``idivkit.EPSILON`` are fine), nor the shortcuts of
:data:`FORBIDDEN` (scikit-learn's ``_beta_divergence``, ``scipy.special.kl_div`` / ``xlogy`` /
``rel_entr``, the deep-learning libraries). And since code that rewrites code could hide such a
call, no cell the learner wrote may use the dynamic features of :data:`TAMPER_NAMES`,
:data:`TAMPER_MODULES`, dunder attributes, frames, or assign to a library's attributes.

The check reads the notebook with :mod:`ast` and follows names statically, with Python's
scoping rules (a function's own locals and closures are not globals). It is conservative: every
binding a name has anywhere in the notebook counts.
"""

from __future__ import annotations

import ast
import importlib
import re

import numpy as np

FORBIDDEN = ("idivkit", "sklearn", "keras", "tensorflow", "torch", "jax", "scipy.special.kl_div",
             "scipy.special.rel_entr", "scipy.special.xlogy", "scipy.special.xlog1py",
             "scipy.special.entr", "scipy.stats.entropy")
TAMPER_NAMES = {"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "getattr",
                "setattr", "delattr", "breakpoint", "get_ipython", "__builtins__", "__loader__",
                "__spec__", "__build_class__"}
# Modules that reach into the interpreter (frames, modules by name, code objects, unpickling):
# with them a cell could rebind what a graded function calls without naming it.
TAMPER_MODULES = {"importlib", "sys", "builtins", "gc", "inspect", "ctypes", "types", "marshal",
                  "pickle", "_pickle", "pickletools", "shelve", "dill", "cloudpickle", "joblib",
                  "code", "codeop", "runpy", "imp", "pydoc", "IPython", "ipykernel", "traitlets",
                  "pdb", "bdb", "trace", "site", "zipimport", "pkgutil", "copyreg", "__main__",
                  "wire", "runner", "autograder", "nbgrader", "numexpr"}
# Functions that import or run code named by a string (pydoc.locate, pandas.eval, ...).
SINK_NAMES = {"locate", "resolve_name", "import_module", "import_item", "import_string",
              "read_pickle", "parse_expr"}
# sympify and sp.S parse strings with eval: only plain literals are allowed.
_SYMPIFY = {"sympify", "S"}
_SAFE_LITERAL = re.compile(r"^[\w\s+\-*/().,^]*$")
FRAME_ATTRS = {"f_globals", "f_locals", "f_back", "f_builtins", "f_code", "tb_frame", "gi_frame",
               "cr_frame", "ag_frame", "co_code", "co_consts", "co_names", "func_globals"}
ALLOWED_DUNDERS = {"__init__", "__name__", "__doc__", "__file__", "__version__"}
_DUNDER = re.compile(r"__[A-Za-z0-9]\w*?__")
_VALUES = (int, float, complex, str, bytes, bool, type(None), np.ndarray, np.generic)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Magics that only time or configure a cell: their code is checked, the magic itself is not.
_MAGIC = re.compile(r"^(\s*)%%?(timeit|time)\b(?:\s+-\S+(?:\s+\d+)?)*\s*(.*)$")
_DROPPED_MAGIC = re.compile(r"^\s*%(matplotlib|config)\b.*$")


def python_source(cell_source: str) -> str:
    """A cell's source as plain Python (IPython syntax translated; timing magics unwrapped)."""
    from IPython.core.inputtransformer2 import TransformerManager

    lines = []
    for line in cell_source.splitlines():
        if _DROPPED_MAGIC.match(line):
            continue
        match = _MAGIC.match(line)
        lines.append(match.group(1) + match.group(3) if match else line)
    return TransformerManager().transform_cell("\n".join(lines) + "\n")


def _forbidden(dotted: str) -> str | None:
    """The forbidden name ``dotted`` is, or None (idivkit values such as EPSILON are fine)."""
    hit = next((f for f in FORBIDDEN if dotted == f or dotted.startswith(f + ".")
                or f.startswith(dotted + ".")), None)
    if hit is None:
        return None
    if dotted.startswith("idivkit.") and _is_value(dotted):
        return None
    return dotted


def _is_value(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return isinstance(obj, _VALUES)
    return False


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _string_built(arg: ast.AST) -> bool:
    """A string argument that is not a plain literal: an f-string, a concatenation, a %-format,
    or a literal with more than arithmetic in it."""
    if isinstance(arg, ast.Constant):
        return isinstance(arg.value, str) and not _SAFE_LITERAL.match(arg.value)
    if isinstance(arg, ast.JoinedStr):
        return True
    if isinstance(arg, ast.BinOp):
        return any(isinstance(n, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(n, "value", ""), str)
                   for n in ast.walk(arg))
    if isinstance(arg, ast.Call) and _called_name(arg) in ("join", "format", "decode", "chr", "str"):
        return True
    return False


def _chain(node: ast.AST) -> tuple[ast.Name | None, list[str]]:
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node if isinstance(node, ast.Name) else None), attrs[::-1]


def _bound_here(scope: ast.AST) -> set[str]:
    """Names bound directly in ``scope`` (not in scopes nested in it), minus ``global`` ones."""
    bound, declared_global = set(), set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = scope.args
        bound |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
        bound |= {x.arg for x in (a.vararg, a.kwarg) if x}
        roots = scope.body if isinstance(scope.body, list) else [scope.body]
    elif isinstance(scope, ast.ClassDef):
        roots = scope.body
    else:  # comprehension
        roots = [g.target for g in scope.generators]
    todo = list(roots)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            continue
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global):
            declared_global |= set(node.names)
        if isinstance(node, _SCOPES) and node not in roots:
            continue
        todo.extend(ast.iter_child_nodes(node))
    return bound - declared_global


class Notebook:
    """The learner's code of one notebook, with the bindings of every top-level name.

    Parameters
    ----------
    student_cells : list of str
        Sources of the cells the learner wrote or could edit.
    instructor_cells : list of str
        Sources of the instructor's locked and context cells (their imports count as
        bindings; they are not scanned for tampering).
    """

    def __init__(self, student_cells, instructor_cells=()):
        self.bindings: dict[str, list] = {}
        self.tampering: list[str] = []
        student_trees = []
        for source, trusted in [(s, False) for s in student_cells] + [(s, True) for s in instructor_cells]:
            try:
                tree = ast.parse(python_source(source))
            except (SyntaxError, ValueError):
                continue
            self._index(tree, imports_only=trusted)
            if not trusted:
                student_trees.append(tree)
        for tree in student_trees:  # after indexing: which names are modules is known
            self._scan(tree)

    def _index(self, tree: ast.Module, imports_only: bool = False) -> None:
        """Record every top-level binding; of the instructor's cells only the imports (their
        other values are the course's data, not code a learner wrote)."""
        for stmt in tree.body:
            for node in [stmt] + ([n for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))]
                                  if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else []):
                if isinstance(node, ast.Import):
                    for a in node.names:
                        name = a.asname or a.name.split(".")[0]
                        self.bindings.setdefault(name, []).append(("import", a.name if a.asname else name))
                elif isinstance(node, ast.ImportFrom):
                    base = "." * node.level + (node.module or "")
                    for a in node.names:
                        self.bindings.setdefault(a.asname or a.name, []).append(("import", f"{base}.{a.name}"))
            if imports_only:
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bindings.setdefault(stmt.name, []).append(("code", stmt))
            elif not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        self.bindings.setdefault(node.id, []).append(("code", stmt))
                    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        self.bindings.setdefault(node.name, []).append(("code", node))

    def _scan(self, tree: ast.Module) -> None:
        modules = {n for n, b in self.bindings.items() if any(k == "import" for k, _ in b)}
        for node in ast.walk(tree):
            found = None
            if isinstance(node, ast.Name) and node.id in TAMPER_NAMES | SINK_NAMES:
                found = node.id
            elif isinstance(node, ast.Attribute) and node.attr in SINK_NAMES | {"eval", "evaluate", "exec"}:
                found = f".{node.attr}"
            elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                found = "allow_pickle="
            elif isinstance(node, ast.Call) and _called_name(node) in _SYMPIFY and node.args \
                    and _string_built(node.args[0]):
                found = f"{_called_name(node)}() of a built string"
            elif isinstance(node, ast.Attribute) and ((_DUNDER.fullmatch(node.attr) and node.attr not in ALLOWED_DUNDERS)
                                                       or node.attr in FRAME_ATTRS):
                found = f".{node.attr}"
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and set(_DUNDER.findall(node.value)) - ALLOWED_DUNDERS:
                found = repr(sorted(set(_DUNDER.findall(node.value)) - ALLOWED_DUNDERS)[0])
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found = next((n for n in names if n.split(".")[0] in TAMPER_MODULES), None)
                found = f"import {found}" if found else None
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for target in targets:
                    root, attrs = _chain(target)
                    if attrs and root is not None and root.id in modules:
                        found = f"{root.id}.{'.'.join(attrs)} = ... (changing a library)"
            if found and found not in self.tampering:
                self.tampering.append(found)

    # -- the check -------------------------------------------------------------------------
    def violation(self, name: str) -> str | None:
        """Why the learner's ``name`` breaks the rule, or None."""
        if self.tampering:
            return (f"your notebook uses {self.tampering[0]}, which graded notebooks may not use "
                    "(it can change how code runs); every step checked for integrity scores zero")
        if name not in self.bindings:
            return None
        walker = _Walker(self)
        found = walker.resolve(name, [])
        if found:
            path = walker.path[1:] if walker.path[:1] == [name] else walker.path
            through = f" (through your `{'` -> `'.join(path)}`)" if path else ""
            kind = "idivkit reference" if found.startswith("idivkit") else "forbidden shortcut"
            return (f"your `{name}`{through} uses the {kind} `{found}`; this step scores zero. "
                    "Write it yourself with numpy.")
        return None


class _Walker:
    def __init__(self, notebook: Notebook):
        self.nb, self.seen, self.path = notebook, set(), []

    def resolve(self, name: str, attrs: list[str]) -> str | None:
        for kind, what in self.nb.bindings.get(name, []):
            if kind == "import":
                bad = _forbidden(".".join([what.lstrip("."), *attrs]))
                if bad:
                    return bad
            elif id(what) not in self.seen:
                self.seen.add(id(what))
                bad = self.visit(what, [])
                if bad:
                    if isinstance(what, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        self.path.insert(0, what.name)
                    return bad
        return None

    def visit(self, node: ast.AST, scopes: list[set[str]]) -> str | None:
        """First forbidden reference reachable from ``node``; ``scopes``: the enclosing scopes
        as ``(is_class, bound names)``, innermost last."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            outer = list(getattr(node, "decorator_list", [])) + list(getattr(node, "bases", []))
            if not isinstance(node, ast.ClassDef):
                outer += [d for d in node.args.defaults + node.args.kw_defaults if d is not None]
            for child in outer:
                bad = self.visit(child, scopes)
                if bad:
                    return bad
            inner = scopes + [(isinstance(node, ast.ClassDef), _bound_here(node))]
            for child in (node.body if isinstance(node.body, list) else [node.body]):
                bad = self.visit(child, inner)
                if bad:
                    return bad
            return None
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            first = self.visit(node.generators[0].iter, scopes)
            if first:
                return first
            inner = scopes + [(False, _bound_here(node))]
            rest = [node.generators[0].target] + node.generators[0].ifs + \
                [p for g in node.generators[1:] for p in (g.iter, g.target, *g.ifs)] + \
                ([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt])
            return next((b for b in (self.visit(c, inner) for c in rest) if b), None)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                dotted = a.name if isinstance(node, ast.Import) else f"{node.module or ''}.{a.name}"
                bad = _forbidden(dotted)
                if bad:
                    return bad
            return None
        if isinstance(node, (ast.Attribute, ast.Name)):
            root, attrs = _chain(node)
            if root is not None and isinstance(root.ctx, ast.Load):
                # Python's rule: the innermost scope, then enclosing functions (never a class body).
                visible = [b for _, b in scopes[-1:]] + [b for is_class, b in scopes[:-1] if not is_class]
                if not any(root.id in bound for bound in visible):
                    return self.resolve(root.id, attrs)
                return None
        return next((b for b in (self.visit(c, scopes) for c in ast.iter_child_nodes(node)) if b), None)
