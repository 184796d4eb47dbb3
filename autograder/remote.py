"""The grader's side of the protocol: fetch a learner's names as plain data, call their
functions inside the sandbox.

A learner's function becomes a :class:`Proxy`; calling it sends the arguments (arrays by
reference, so in-place changes come back, as they would in one process; the test's own
functions as callbacks that the sandbox calls back) and returns the result as plain data:
numbers, strings, numpy arrays, lists, tuples, dicts, sympy expressions (parsed by
:mod:`autograder.safe_sympy`). Anything else comes back as an :class:`Opaque` stand-in that a
test can only look at, never run.
"""

from __future__ import annotations

import time

import numpy as np

from . import safe_sympy, wire
from .sandbox import SandboxError
from .session import Session

MAX_REPLY = 256 * 2**20  # bytes of arrays in one answer (MNIST's test set is 31 MB)


class LearnerError(Exception):
    """The learner's code raised ``ename: evalue`` inside the sandbox."""

    def __init__(self, ename: str, evalue: str):
        self.ename = ename if str(ename).isidentifier() else "Exception"
        self.evalue = str(evalue)[:2000]
        super().__init__(f"{self.ename}: {self.evalue}")


class Opaque:
    """Stand-in for a learner's object that is neither plain data nor callable."""

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:100]

    def __repr__(self):
        return f"<{self.type_name} object from your notebook>"


class Proxy:
    """A learner's callable; calling it runs it in the sandbox."""

    def __init__(self, remote: "Remote", handle: int, name: str):
        self._remote, self._handle, self.name = remote, handle, name
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        return self._remote.call(self, args, kwargs)

    def __repr__(self):
        return f"<your function {self.name}>"


class Remote:
    """RPC client of one :class:`~autograder.sandbox.Session`.

    ``deadline`` (a ``time.monotonic()`` value) bounds every exchange; the executor sets it
    per cell.
    """

    def __init__(self, session: Session):
        self.session = session
        self.deadline = time.monotonic() + 600

    # -- decoding (untrusted data) -----------------------------------------------------------
    def _decode(self, tree, blobs, refs=None, name: str = ""):
        def on_callable(node):
            return Proxy(self, int(node["f"]), name or str(node.get("n", ""))[:100])

        def on_ref(ref, array):
            original = (refs or {}).get(int(ref))
            if original is None:
                return array
            if original.shape == array.shape and original.dtype == array.dtype:
                original[...] = array
            return original

        return wire.decode(tree, blobs, on_callable=on_callable,
                           on_other=lambda node: Opaque(node.get("type", "object")),
                           on_sympy=safe_sympy.parse, on_ref=on_ref)

    def _encoder(self, callbacks: dict, refs: dict):
        ids = {}

        def on_callable(obj):
            if isinstance(obj, Proxy):
                return {"f": obj._handle, "n": obj.name}
            callbacks[len(callbacks) + 1] = obj
            return {"cb": len(callbacks)}

        def ref_of(array):
            if id(array) not in ids:
                ids[id(array)] = len(refs) + 1
                refs[ids[id(array)]] = array
            return ids[id(array)]

        def on_other(obj):
            raise TypeError(f"cannot pass a {type(obj).__name__} to a learner's function")

        def sympy_srepr(value):
            if (type(value).__module__ or "").startswith("sympy"):
                import sympy

                return sympy.srepr(value) if isinstance(value, sympy.Basic) else None
            return None

        return wire.Encoder(on_callable, on_other, ref_of=ref_of, sympy_srepr=sympy_srepr)

    # -- requests ------------------------------------------------------------------------
    def execute(self, source: str) -> dict:
        """Run one cell; returns ``{"outputs": [...], "error": {...} or None}``."""
        self.session.send({"op": "exec", "source": source}, deadline=self.deadline)
        message, _ = self.session.receive(self.deadline, max_bytes=0)
        if not isinstance(message, dict) or message.get("op") != "done" or not isinstance(message.get("outputs"), list):
            raise SandboxError("the runner broke the protocol")
        return message

    def get(self, names) -> dict:
        """The learner's values of ``names`` that exist (missing names are left out)."""
        names = sorted(set(names))
        if not names:
            return {}
        self.session.send({"op": "get", "names": names}, deadline=self.deadline)
        message, blobs = self.session.receive(self.deadline, MAX_REPLY)
        values = message.get("values", {}) if message.get("op") == "values" else {}
        found = {}
        for name in names:
            if name in values:
                found[name] = self._decode(values[name], blobs, name=name)
        return found

    def set(self, values: dict) -> None:
        """Bind plain-data ``values`` in the learner's namespace (what a test cell's visible part
        bound and later cells read, as they would in one kernel); others are left out."""
        plain = {}
        for name, value in values.items():
            try:
                self._encoder({}, {}).encode(value)
            except Exception:  # noqa: BLE001  (code, opaque objects: not sent)
                continue
            if not callable(value):
                plain[name] = value
        if not plain:
            return
        encoder = self._encoder({}, {})
        self.session.send({"op": "set", "values": encoder.encode(plain)}, encoder.blobs, deadline=self.deadline)
        self.session.receive(self.deadline, max_bytes=0)

    def call(self, proxy: Proxy, args, kwargs):
        callbacks, refs = {}, {}
        encoder = self._encoder(callbacks, refs)
        header = {"op": "call", "handle": proxy._handle, "args": encoder.encode(list(args)),
                  "kwargs": encoder.encode(dict(kwargs))}
        self.session.send(header, encoder.blobs, deadline=self.deadline)
        while True:
            message, blobs = self.session.receive(self.deadline, MAX_REPLY)
            op = message.get("op") if isinstance(message, dict) else None
            if op == "callback":
                self._answer_callback(message, blobs, callbacks, refs)
                continue
            if op == "raise":
                raise LearnerError(message.get("ename", "Exception"), message.get("evalue", ""))
            if op == "result":
                for ref, tree in (message.get("refs") or {}).items():
                    self._decode(tree, blobs, refs)  # writes the array back in place
                return self._decode(message.get("value"), blobs, refs, name="")
            raise SandboxError("the runner broke the protocol")

    def _answer_callback(self, message, blobs, callbacks, refs):
        """Run the test's own function (trusted) on the learner's data and send the result."""
        try:
            func = callbacks[int(message["cb"])]
            args = self._decode(message.get("args"), blobs, refs)
            kwargs = self._decode(message.get("kwargs"), blobs, refs)
            value = func(*args, **{str(k): v for k, v in kwargs.items()})
            encoder = self._encoder(callbacks, refs)
            reply, out = {"op": "result", "value": encoder.encode(value)}, encoder.blobs
        except Exception as error:  # noqa: BLE001  (reported into the learner's code)
            reply, out = {"op": "raise", "ename": type(error).__name__, "evalue": str(error)[:500]}, []
        self.session.send(reply, out, deadline=self.deadline)


def plain(value):
    """``value`` with numpy scalars made Python numbers (for messages)."""
    return value.item() if isinstance(value, np.generic) else value
