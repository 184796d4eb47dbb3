"""The code scanner behind :func:`idivkit.grading.check_independent`.

It reads a learner's code objects -- names loaded (with attribute chains resolved), imports,
strings naming idivkit modules, nested functions and lambdas, closures, default arguments --
and follows every function or class the learner wrote in the same notebook, recursively.
Plain values from idivkit (``EPSILON``, arrays) are fine; code from idivkit is a reference.
"""

from __future__ import annotations

import dis
import functools
import re
import sys
import types
from collections.abc import Callable, Iterable

import numpy as np

PACKAGE = "idivkit"
_MODULE_STRING = re.compile(r"^idivkit(\.\w+)*$")
_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_GLOBALS"}
_ATTRS = {"LOAD_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR"}
# What may follow IMPORT_NAME while the imported names are bound (``from a import b as c``).
_IMPORT_TAIL = {"IMPORT_FROM", "STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF", "POP_TOP"}
# Plain values handed to learners (EPSILON, arrays loaded by idivkit.data, ...) are never a
# violation: only code (modules, functions, classes, instances of idivkit classes) is.
VALUE_TYPES = (int, float, complex, str, bytes, bool, type(None), np.ndarray, np.generic)
_MISSING = object()
_MAX_DEPTH = 50


def qualified_name(obj) -> str | None:
    """Dotted name of a module, function or class (``idivkit.losses.beta_divergence``)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return None


def in_package(name: str | None) -> bool:
    """Whether the dotted ``name`` is idivkit or inside it."""
    return bool(name) and (name == PACKAGE or name.startswith(PACKAGE + "."))


def _matches(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def unwrap(obj):
    """Look through decorators that keep ``__wrapped__`` (functools.wraps, lru_cache)."""
    for _ in range(10):
        if isinstance(obj, types.ModuleType) or not hasattr(obj, "__wrapped__"):
            break
        inner = obj.__wrapped__
        if inner is obj:
            break
        obj = inner
    return obj


def _resolve_dotted(name: str):
    """The object an already imported dotted name refers to, or ``_MISSING``."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is not None:
            obj = module
            for attr in parts[cut:]:
                obj = getattr(obj, attr, _MISSING)
                if obj is _MISSING:
                    return _MISSING
            return obj
    return _MISSING


def find_reference(func: Callable, forbidden: Iterable = (), allow: Iterable = ()):
    """The first forbidden reference ``func`` uses, as ``(name, [learner helpers on the way])``,
    or None. ``forbidden`` and ``allow`` hold objects or dotted names (prefixes for ``allow``);
    everything in idivkit that is not allowed is forbidden."""
    return _Scanner(func, list(forbidden), list(allow)).check_object(func)


class _Scanner:
    """Walks the learner's code and collects the first forbidden reference."""

    def __init__(self, root: Callable, forbidden: list, allow: list):
        self.root_globals = getattr(unwrap(root), "__globals__", None)
        self.root_module = getattr(unwrap(root), "__module__", None)
        self.forbidden_objects = [o for o in forbidden if not isinstance(o, str)]
        self.forbidden_names = [o for o in forbidden if isinstance(o, str)]
        self.allow_objects = [o for o in allow if not isinstance(o, str)]
        self.allow_names = [o for o in allow if isinstance(o, str)]
        self.seen: set[int] = set()

    # -- classification ----------------------------------------------------------------------
    def _allowed(self, obj, name: str | None) -> bool:
        if any(obj is a for a in self.allow_objects):
            return True
        return bool(name) and _matches(name, self.allow_names)

    def violation(self, obj) -> str | None:
        """The name of the reference ``obj`` is, or None if it is fine to use."""
        if isinstance(obj, VALUE_TYPES):
            return None
        if any(obj is f for f in self.forbidden_objects):
            return qualified_name(obj) or repr(obj)
        name = qualified_name(obj)
        if name is None and not isinstance(obj, type):
            # An instance: judge it by its class (e.g. an idivkit Keras loss object).
            cls_name = qualified_name(type(obj))
            if in_package(cls_name) and not self._allowed(type(obj), cls_name):
                return f"{cls_name} (an instance)"
            return None
        if name is None or self._allowed(obj, name):
            return None
        if in_package(name) or _matches(name, self.forbidden_names):
            return name
        return None

    def is_learner_code(self, obj) -> bool:
        """Functions and classes written in the notebook (same globals / same module)."""
        if isinstance(obj, types.FunctionType):
            return obj.__globals__ is self.root_globals or obj.__module__ in ("__main__", self.root_module)
        if isinstance(obj, type):
            return obj.__module__ in ("__main__", self.root_module)
        return False

    # -- traversal ---------------------------------------------------------------------------
    def check_object(self, obj, depth: int = 0) -> tuple[str, list[str]] | None:
        """Return (forbidden name, path of learner helpers) or None."""
        obj = unwrap(obj)
        if id(obj) in self.seen or depth > _MAX_DEPTH:
            return None
        bad = self.violation(obj)
        if bad:
            return bad, []
        if isinstance(obj, VALUE_TYPES):
            return None
        self.seen.add(id(obj))
        if isinstance(obj, (list, tuple, set, frozenset)):
            return self._first(obj, depth)
        if isinstance(obj, dict):
            return self._first(list(obj.values()), depth)
        if isinstance(obj, functools.partial):
            return self._first([obj.func, *obj.args, *obj.keywords.values()], depth)
        if isinstance(obj, types.MethodType):
            return self._first([obj.__func__, obj.__self__], depth)
        if isinstance(obj, types.FunctionType):
            if not self.is_learner_code(obj):
                return None
            found = self._check_function(obj, depth)
            return (found[0], [obj.__name__, *found[1]]) if found else None
        if isinstance(obj, type):
            return self._first(_class_members(obj), depth) if self.is_learner_code(obj) else None
        # An instance of a learner's class: check the class.
        if self.is_learner_code(type(obj)):
            return self.check_object(type(obj), depth + 1)
        return None

    def _first(self, objects, depth):
        for item in objects:
            found = self.check_object(item, depth + 1)
            if found:
                return found
        return None

    def _check_function(self, func: types.FunctionType, depth: int):
        closure = {}
        for name, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
            try:
                closure[name] = cell.cell_contents
            except ValueError:  # empty cell
                pass
        extras = list(func.__defaults__ or ()) + list((func.__kwdefaults__ or {}).values())
        found = self._first(extras + list(closure.values()), depth)
        if found:
            return found
        return self._check_code(func.__code__, func.__globals__, closure, depth)

    def _check_code(self, code: types.CodeType, globals_: dict, closure: dict, depth: int):
        instructions = list(dis.get_instructions(code))
        i = 0
        while i < len(instructions):
            ins = instructions[i]
            if ins.opname in _LOADS and isinstance(ins.argval, str):
                scope = closure if ins.opname == "LOAD_DEREF" else globals_
                obj = scope.get(ins.argval, _MISSING)  # builtins and locals: nothing to check
                if obj is not _MISSING:
                    obj, i = _follow_attributes(obj, instructions, i + 1)
                    found = self.check_object(obj, depth + 1)
                    if found:
                        return found
                    continue
            elif ins.opname == "IMPORT_NAME" and isinstance(ins.argval, str):
                found = self._check_import(instructions, i)
                if found:
                    return found
            elif ins.opname == "LOAD_CONST":
                const = ins.argval
                if isinstance(const, str) and _MODULE_STRING.match(const) \
                        and not _matches(const, self.allow_names):
                    return const, []  # importlib.import_module("idivkit.losses") and the like
            i += 1
        for const in code.co_consts:
            if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
                found = self._check_code(const, globals_, closure, depth + 1)
                if found:
                    return found
        return None

    def _check_import(self, instructions, i):
        """An ``import`` at ``instructions[i]`` (IMPORT_NAME) of idivkit code, or None."""
        module = instructions[i].argval
        fromlist = []
        j = i + 1
        while j < len(instructions) and instructions[j].opname in _IMPORT_TAIL:
            if instructions[j].opname == "IMPORT_FROM":
                fromlist.append(instructions[j].argval)
            j += 1
        plain_import = i > 0 and instructions[i - 1].opname == "LOAD_CONST" \
            and instructions[i - 1].argval is None  # `import a.b as c`, no fromlist
        names = [module] if plain_import else ([f"{module}.{f}" for f in fromlist] or [module])
        for full in names:
            if in_package(full) and not _matches(full, self.allow_names):
                resolved = _resolve_dotted(full)
                if resolved is not _MISSING and isinstance(resolved, VALUE_TYPES):
                    continue  # `from idivkit import EPSILON`: a plain value
                return full, []
        return None


def _class_members(cls: type) -> list:
    """Methods (static and class methods unwrapped), property accessors and bases of ``cls``."""
    members = [m.__func__ if isinstance(m, (staticmethod, classmethod)) else m for m in vars(cls).values()]
    members += [p for m in vars(cls).values() if isinstance(m, property)
                for p in (m.fget, m.fset, m.fdel) if p is not None]
    return members + list(cls.__bases__)


def _follow_attributes(obj, instructions, j):
    """Follow an attribute chain (``idivkit.losses.beta_divergence``) starting at
    ``instructions[j]`` to its end: the object actually used is what counts (``idivkit.EPSILON``
    is a float, fine). Returns the object and the index after the chain."""
    while j < len(instructions) and instructions[j].opname in _ATTRS:
        attr = instructions[j].argval
        if not isinstance(attr, str) or not hasattr(obj, attr):
            break
        try:
            obj = getattr(obj, attr)
        except Exception:  # properties that fail: stop following
            break
        j += 1
    return obj, j
