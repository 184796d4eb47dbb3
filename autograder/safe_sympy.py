"""Rebuild a sympy expression from its ``srepr`` text without ``eval``.

The text comes from the sandbox, so it is parsed with :mod:`ast` and only a whitelist is
accepted: calls of sympy classes (subclasses of ``sympy.Basic`` such as ``Add``, ``Symbol``,
``log``), number and string constants, and keyword arguments with constant values. Integers
are bounded so that no expression can make the grader compute for ever.
"""

from __future__ import annotations

import ast

MAX_NODES = 5000
MAX_TEXT = 200_000
MAX_INT = 10**6
MAX_POWER = 10**4  # product of the integer exponents along any path of nested powers
MAX_PRECISION = 1000


class UnsafeExpression(ValueError):
    """The text is not a plain sympy expression within the limits."""


#: The named constants ``srepr`` writes as bare names, and the sympy attributes they are.
_CONSTANTS = {"pi": "pi", "E": "E", "oo": "oo", "I": "I", "zoo": "zoo", "nan": "nan"}


def _constructor(name: str):
    import sympy

    obj = getattr(sympy, name, None)
    if isinstance(obj, type) and issubclass(obj, sympy.Basic):
        return obj
    if name == "Function":
        return sympy.Function
    raise UnsafeExpression(f"{name} is not a sympy class")


def parse(text: str):
    """The sympy expression that ``text`` (an ``srepr``) describes."""
    import sympy

    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise UnsafeExpression("expression text too long")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise UnsafeExpression("not an expression") from None
    count = [0]

    def constant(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            value = node.value
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
                and isinstance(node.operand.value, (int, float)):
            value = -node.operand.value
        else:
            raise UnsafeExpression("not a constant")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise UnsafeExpression("integer too large")
        if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) > 13:
            raise UnsafeExpression("integer too large")
        return value

    def exponent(node) -> int:
        """|n| when ``node`` is Integer(n) or a plain integer, else 1."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Integer" \
                and node.args:
            node = node.args[0]
        try:
            value = constant(node)
        except UnsafeExpression:
            return 1
        return abs(int(value)) if isinstance(value, int) and not isinstance(value, bool) else 1

    def build(node, power=1):
        count[0] += 1
        if count[0] > MAX_NODES:
            raise UnsafeExpression("expression too large")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            cls = _constructor(node.func.id)
            if node.func.id == "Pow" and len(node.args) == 2:
                power *= max(1, exponent(node.args[1]))
                if power > MAX_POWER:
                    raise UnsafeExpression("powers too large")
            args = [build(a, power) for a in node.args]
            kwargs = {}
            for kw in node.keywords:
                if kw.arg is None:
                    raise UnsafeExpression("no ** arguments")
                kwargs[kw.arg] = constant(kw.value)
            if kwargs.get("precision", 0) and kwargs["precision"] > MAX_PRECISION:
                raise UnsafeExpression("precision too large")
            return cls(*args, **kwargs)
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:  # srepr writes pi, E, oo, I as bare names
                return getattr(sympy, _CONSTANTS[node.id])
            return _constructor(node.id)()  # singletons such as Half(), Pi() appear called; be lenient
        if isinstance(node, (ast.Tuple, ast.List)):
            return sympy.Tuple(*[build(e, power) for e in node.elts])
        return constant(node)

    try:
        expr = build(tree.body)
    except UnsafeExpression:
        raise
    except Exception as error:  # noqa: BLE001  (a constructor refusing its arguments)
        raise UnsafeExpression(f"invalid expression ({type(error).__name__})") from None
    if not isinstance(expr, sympy.Basic):
        return sympy.sympify(expr) if isinstance(expr, (int, float)) else expr
    return expr
