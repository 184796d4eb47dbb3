"""Checks that the course's tests call: integrity and tolerant comparisons.

Used in every lesson (00-04), by the visible and the hidden nbgrader tests.

* :func:`check_independent` -- the integrity rule: a graded function must not use the idivkit
  reference it reimplements (nor anything else from idivkit). It inspects the learner's code
  objects (names loaded, attribute chains, imports, nested code, closures, defaults) and follows
  every helper the learner wrote in the notebook, recursively.
* :func:`assert_close` -- compares a result with the expected one and says *what* is wrong
  (shape, dtype, NaN/inf placement, size of the error) without ever printing the expected values.
* :func:`expect` -- a one-line assertion with a message that tells the learner what to fix.

All three raise ``AssertionError``: nbgrader gives a test cell zero points when it raises.
"""

from __future__ import annotations

import dis
import functools
import re
import types
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["check_independent", "assert_close", "expect", "IntegrityError"]

_PACKAGE = "idivkit"
_MODULE_STRING = re.compile(r"^idivkit(\.\w+)*$")
_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_GLOBALS"}
_ATTRS = {"LOAD_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR"}
# Plain values handed to learners (EPSILON, arrays loaded by idivkit.data, ...) are never a
# violation: only code (modules, functions, classes, instances of idivkit classes) is.
_VALUE_TYPES = (int, float, complex, str, bytes, bool, type(None), np.ndarray, np.generic)


# The checks themselves are no reference implementation: a learner may call them anywhere.
_ALWAYS_ALLOWED = ("idivkit.grading",)


class IntegrityError(AssertionError):
    """Raised by :func:`check_independent`; an AssertionError, so the nbgrader step scores 0."""


# --------------------------------------------------------------------------------------------
# check_independent
# --------------------------------------------------------------------------------------------
def _qualified_name(obj) -> str | None:
    """Dotted name of a module, function or class (``idivkit.losses.beta_divergence``)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return None


def _in_package(name: str | None) -> bool:
    return bool(name) and (name == _PACKAGE or name.startswith(_PACKAGE + "."))


def _matches(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class _Scanner:
    """Walks the learner's code and collects the first forbidden reference."""

    def __init__(self, root: Callable, forbidden: list, allow: list):
        self.root_globals = getattr(_unwrap(root), "__globals__", None)
        self.root_module = getattr(_unwrap(root), "__module__", None)
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
        if isinstance(obj, _VALUE_TYPES):
            return None
        if any(obj is f for f in self.forbidden_objects):
            return _qualified_name(obj) or repr(obj)
        name = _qualified_name(obj)
        if name is None and not isinstance(obj, type):
            # An instance: judge it by its class (e.g. an idivkit Keras loss object).
            cls_name = _qualified_name(type(obj))
            if _in_package(cls_name) and not self._allowed(type(obj), cls_name):
                return f"{cls_name} (an instance)"
            return None
        if name is None or self._allowed(obj, name):
            return None
        if _in_package(name) or _matches(name, self.forbidden_names):
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
        obj = _unwrap(obj)
        if id(obj) in self.seen or depth > 50:
            return None
        bad = self.violation(obj)
        if bad:
            return bad, []
        if isinstance(obj, _VALUE_TYPES):
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
            if found:
                bad, path = found
                return bad, [obj.__name__, *path]
            return None
        if isinstance(obj, type):
            if not self.is_learner_code(obj):
                return None
            members = [m.__func__ if isinstance(m, (staticmethod, classmethod)) else m
                       for m in vars(obj).values()]
            members += [p for m in vars(obj).values() if isinstance(m, property)
                        for p in (m.fget, m.fset, m.fdel) if p is not None]
            members += list(obj.__bases__)
            return self._first(members, depth)
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
        if func.__closure__:
            for name, cell in zip(func.__code__.co_freevars, func.__closure__):
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
        builtins = globals_.get("__builtins__", {})
        if isinstance(builtins, types.ModuleType):
            builtins = vars(builtins)
        instructions = list(dis.get_instructions(code))
        i = 0
        while i < len(instructions):
            ins = instructions[i]
            if ins.opname in _LOADS and isinstance(ins.argval, str):
                name = ins.argval
                if ins.opname == "LOAD_DEREF":
                    if name not in closure:
                        i += 1
                        continue
                    obj = closure[name]
                elif name in globals_:
                    obj = globals_[name]
                elif name in builtins:
                    i += 1
                    continue
                else:
                    i += 1
                    continue
                # Follow an attribute chain (idivkit.losses.beta_divergence) to its end: the
                # object actually used is what counts (idivkit.EPSILON is a float, fine).
                j = i + 1
                while j < len(instructions) and instructions[j].opname in _ATTRS:
                    attr = instructions[j].argval
                    if not isinstance(attr, str) or not hasattr(obj, attr):
                        break
                    try:
                        obj = getattr(obj, attr)
                    except Exception:  # properties that fail: stop following
                        break
                    j += 1
                found = self.check_object(obj, depth + 1)
                if found:
                    return found
                i = j
                continue
            if ins.opname == "IMPORT_NAME" and isinstance(ins.argval, str):
                module = ins.argval
                fromlist = []
                j = i + 1
                while j < len(instructions) and instructions[j].opname in ("IMPORT_FROM", "STORE_FAST",
                                                                             "STORE_NAME", "STORE_GLOBAL",
                                                                             "STORE_DEREF", "POP_TOP"):
                    if instructions[j].opname == "IMPORT_FROM":
                        fromlist.append(instructions[j].argval)
                    j += 1
                plain_import = i > 0 and instructions[i - 1].opname == "LOAD_CONST" \
                    and instructions[i - 1].argval is None  # `import a.b as c`, no fromlist
                names = [module] if plain_import else ([f"{module}.{f}" for f in fromlist] or [module])
                for full in names:
                    if _in_package(full) and not _matches(full, self.allow_names):
                        resolved = _resolve_dotted(full)
                        if resolved is not _MISSING and isinstance(resolved, _VALUE_TYPES):
                            continue
                        return full, []
            if ins.opname == "LOAD_CONST":
                const = ins.argval
                if isinstance(const, str) and _MODULE_STRING.match(const):
                    if not _matches(const, self.allow_names):
                        return const, []
            i += 1
        for const in code.co_consts:
            if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
                found = self._check_code(const, globals_, closure, depth + 1)
                if found:
                    return found
        return None


_MISSING = object()


def _resolve_dotted(name: str):
    import sys

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


def _unwrap(obj):
    """Look through decorators that keep ``__wrapped__`` (functools.wraps, lru_cache)."""
    seen = 0
    while hasattr(obj, "__wrapped__") and seen < 10 and not isinstance(obj, types.ModuleType):
        inner = obj.__wrapped__
        if inner is obj:
            break
        obj = inner
        seen += 1
    return obj


def check_independent(func: Callable, *, references: Iterable | None = None,
                      allow: Iterable = (), name: str | None = None) -> None:
    """Raise an AssertionError if ``func`` uses idivkit instead of being written by the learner.

    The integrity rule of the course: a graded function that calls the idivkit reference it
    reimplements (or anything else from the package) scores zero for that step.

    Parameters
    ----------
    func : callable
        The learner's function (or class, or lambda, or ``functools.partial``).
    references : iterable of objects or dotted names, optional
        Further things the step forbids, outside idivkit (e.g. ``"scipy.special.xlogy"`` or a
        function object). Everything from idivkit is always forbidden.
    allow : iterable of objects or dotted-name prefixes, optional
        idivkit parts a lesson hands to learners on purpose, e.g. ``allow=("idivkit.data",)``.
        Plain values (``idivkit.EPSILON``, arrays) and :mod:`idivkit.grading` (these checks)
        are always allowed.
    name : str, optional
        The name used in the message; defaults to ``func.__name__``.

    Raises
    ------
    IntegrityError (an AssertionError)
        With a message naming the reference, e.g. "Integrity: your `beta_divergence` uses the
        idivkit reference `idivkit.losses.beta_divergence`; this step scores zero. Write it
        yourself with numpy."

    Notes
    -----
    The check reads the code: names loaded (with attribute chains resolved), imports inside the
    function, strings naming idivkit modules, nested functions and lambdas, closures, default
    arguments, and -- recursively -- every function or class the learner defined in the same
    notebook. Plain values from idivkit are fine; code from idivkit is not.
    """
    if func is None:
        raise AssertionError("check_independent: got None instead of your function; did you run "
                             "the cell that defines it?")
    label = name or getattr(_unwrap(func), "__name__", None) or type(func).__name__
    scanner = _Scanner(func, list(references or ()), [*_ALWAYS_ALLOWED, *allow])
    found = scanner.check_object(func)
    if found is None:
        return
    bad, path = found
    root_name = getattr(_unwrap(func), "__name__", None)
    helpers = path[1:] if path and path[0] == root_name else path
    through = f" (through your `{'` -> `'.join(helpers)}`)" if helpers else ""
    kind = "idivkit reference" if _in_package(bad.split(" ")[0]) else "forbidden reference"
    raise IntegrityError(
        f"Integrity: your `{label}`{through} uses the {kind} `{bad}`; this step scores zero. "
        "Write it yourself with numpy."
    )


# --------------------------------------------------------------------------------------------
# assert_close
# --------------------------------------------------------------------------------------------
def _kind(dtype: np.dtype) -> str:
    if dtype == bool:
        return "boolean"
    if np.issubdtype(dtype, np.integer):
        return "integer"
    if np.issubdtype(dtype, np.floating):
        return "floating-point"
    if np.issubdtype(dtype, np.complexfloating):
        return "complex"
    return str(dtype)


def _where(mask: np.ndarray) -> str:
    count = int(np.count_nonzero(mask))
    first = np.argwhere(mask)[0] if count else None
    at = ""
    if first is not None and mask.ndim:
        at = f" (first at index {tuple(int(i) for i in first)})"
    return f"{count} of {mask.size} entr{'y' if mask.size == 1 else 'ies'}{at}"


def assert_close(actual, expected, *, rtol: float, atol: float = 0.0,
                 what: str = "your result", dtype=None) -> None:
    """Assert that ``actual`` matches ``expected``; explain what is wrong, never the answer.

    Checks, in order: that ``actual`` is a numeric array-like, its shape, its dtype kind
    (boolean / integer / floating-point; ``dtype=`` demands an exact dtype), where it holds NaN
    and +-inf, and finally its values: ``|actual - expected| <= atol + rtol * |expected|``
    elementwise on the finite entries. Integer and boolean results must match exactly.

    Parameters
    ----------
    actual : array-like
        The learner's result.
    expected : array-like
        The reference result. Its values never appear in a message.
    rtol, atol : float
        Relative and absolute tolerances (explicit: ``rtol`` has no default).
    what : str
        How to name ``actual`` in messages ("your u", "beta_divergence(x, x_hat, 2)").
    dtype : numpy dtype, optional
        Require exactly this dtype (e.g. ``np.float32``).

    Raises
    ------
    AssertionError
        e.g. "your result: max relative error 3.2e-02 at 5 of 12 entries (first at index
        (1, 3)); tolerance rtol=1e-06, atol=0".
    """
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    if actual is None:
        raise AssertionError(f"{what} is None: did you forget to `return` it (or to run the cell)?")
    try:
        a = np.asarray(actual)
    except Exception as error:  # ragged lists and other oddities
        raise AssertionError(f"{what} could not be read as a numpy array ({error})") from None
    e = np.asarray(expected)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise AssertionError(f"{what} is not numeric (type {type(actual).__name__}, dtype {a.dtype})")
    if a.shape != e.shape:
        if a.ndim != e.ndim:
            raise AssertionError(
                f"{what} has shape {a.shape} ({a.ndim}-D) but a {e.ndim}-D result of shape "
                f"{e.shape} is expected; check reshapes, transposes and reductions (axis=...)")
        raise AssertionError(f"{what} has shape {a.shape} but shape {e.shape} is expected")
    if dtype is not None and a.dtype != np.dtype(dtype):
        raise AssertionError(f"{what} has dtype {a.dtype} but dtype {np.dtype(dtype)} is expected")
    ka, ke = _kind(a.dtype), _kind(e.dtype)
    if ka != ke and not (ke == "floating-point" and ka == "floating-point"):
        if ke == "floating-point" and ka in ("integer", "boolean"):
            raise AssertionError(
                f"{what} has {ka} dtype {a.dtype} but a floating-point result is expected "
                "(integer arithmetic or astype(int) somewhere?)")
        if ke == "integer" and ka == "boolean" or ke == "boolean" and ka != "boolean":
            raise AssertionError(f"{what} has {ka} dtype {a.dtype} but a {ke} result is expected")
        if ke == "integer" and ka == "floating-point":
            raise AssertionError(f"{what} has floating-point dtype {a.dtype} but an integer "
                                 "result is expected")
        if ka != ke:
            raise AssertionError(f"{what} has {ka} dtype {a.dtype} but a {ke} result is expected")

    if ke in ("integer", "boolean"):
        wrong = a != e
        if np.any(wrong):
            if a.size == 1:
                raise AssertionError(f"{what} is not the expected value")
            raise AssertionError(f"{what} differs from the expected result at {_where(wrong)}")
        return

    a_nan, e_nan = np.isnan(a), np.isnan(e)
    if np.any(a_nan & ~e_nan):
        raise AssertionError(f"{what} has NaN at {_where(a_nan & ~e_nan)} where a number is "
                             "expected (0/0, log of a negative, inf - inf?)")
    if np.any(e_nan & ~a_nan):
        raise AssertionError(f"{what} is a number at {_where(e_nan & ~a_nan)} where NaN is expected")
    a_inf, e_inf = np.isinf(a), np.isinf(e)
    if np.any(a_inf & ~e_inf):
        raise AssertionError(f"{what} is infinite at {_where(a_inf & ~e_inf)} where a finite "
                             "value is expected (division by zero, log(0), overflow in exp?)")
    if np.any(e_inf & ~a_inf):
        raise AssertionError(f"{what} is finite at {_where(e_inf & ~a_inf)} where an infinite "
                             "value is expected")
    both_inf = a_inf & e_inf
    if np.any(both_inf & (np.sign(a) != np.sign(e))):
        raise AssertionError(f"{what} has an infinity of the wrong sign at "
                             f"{_where(both_inf & (np.sign(a) != np.sign(e)))}")

    finite = np.isfinite(e)
    af = a[finite].astype(np.float64) if np.iscomplexobj(a) is False else a[finite]
    ef = e[finite].astype(np.float64) if np.iscomplexobj(e) is False else e[finite]
    error = np.abs(af - ef)
    tolerance = atol + rtol * np.abs(ef)
    bad_flat = error > tolerance
    if not np.any(bad_flat):
        return
    bad = np.zeros(e.shape, dtype=bool)
    bad[finite] = bad_flat
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(np.abs(ef) > 0, error / np.abs(ef), np.inf)
    max_rel = float(np.max(relative[bad_flat]))
    max_abs = float(np.max(error[bad_flat]))
    size_note = (f"max relative error {max_rel:.1e}" if np.isfinite(max_rel)
                 else f"max absolute error {max_abs:.1e} (where zero is expected)")
    if np.isfinite(max_rel):
        size_note += f", max absolute error {max_abs:.1e}"
    raise AssertionError(f"{what}: {size_note} at {_where(bad)}; tolerance rtol={rtol:g}, "
                         f"atol={atol:g}")


def expect(condition, message: str) -> None:
    """``assert condition, message`` that survives ``python -O``; message says what to fix."""
    if not bool(condition):
        raise AssertionError(message)
