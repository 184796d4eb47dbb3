"""The plain-data protocol between the grader and the sandboxed runner (no pickle, ever).

A message is one frame: an 8-byte big-endian length, a JSON header, then the binary blobs the
header lists (``"blobs": [n1, n2, ...]``), each an ``.npy`` file written with
``allow_pickle=False``. Values are encoded as JSON trees with one-letter tags:

``{"c": [re, im]}`` complex, ``{"l": [...]}`` list, ``{"t": [...]}`` tuple,
``{"d": [[k, v], ...]}`` dict, ``{"a": i}`` ndarray (blob i; ``"r"`` names an array passed by
reference), ``{"s": i}`` numpy scalar, ``{"sym": srepr}`` sympy expression (the grader parses
it with a whitelist, never ``eval``), ``{"f": handle, "n": name}`` a callable in the sandbox,
``{"cb": id}`` a callable of the grader, ``{"o": handle, "type": name}`` anything else.

This module is copied into the sandbox next to the runner: it imports only the standard
library and numpy, and nothing from the grader.
"""

from __future__ import annotations

import io
import json
import os
import struct

import numpy as np

MAX_HEADER = 64 * 2**20
MAX_DEPTH = 64
MAX_NODES = 2_000_000


class WireError(RuntimeError):
    """A frame or a value that breaks the protocol or its limits."""


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def send(fd: int, header: dict, blobs=(), write=_write_all) -> None:
    """Write one frame (header and blobs) to file descriptor ``fd``."""
    blobs = list(blobs)
    header = dict(header, blobs=[len(b) for b in blobs])
    body = json.dumps(header, allow_nan=True).encode("utf-8")
    write(fd, struct.pack(">Q", len(body)) + body)
    for blob in blobs:
        write(fd, blob)


def recv(fd: int, max_blobs_bytes: int = 1 << 30, read=_read_exact) -> tuple[dict, list[bytes]]:
    """Read one frame; raise WireError when it exceeds the limits. ``read(fd, n)`` reads
    exactly n bytes (the grader passes one with a deadline)."""
    (length,) = struct.unpack(">Q", read(fd, 8))
    if length > MAX_HEADER:
        raise WireError(f"message header of {length} bytes is over the limit")
    try:
        header = json.loads(read(fd, length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WireError("a message that is not JSON") from None
    sizes = header.get("blobs", []) if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
        raise WireError("malformed message")
    if sum(sizes) > max_blobs_bytes:
        raise WireError(f"message of {sum(sizes)} bytes is over the limit of {max_blobs_bytes}")
    return header, [read(fd, s) for s in sizes]


def array_to_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def bytes_to_array(blob: bytes) -> np.ndarray:
    array = np.load(io.BytesIO(blob), allow_pickle=False)
    if array.dtype.hasobject:
        raise WireError("object arrays are not plain data")
    return array


class Encoder:
    """Turn a value into a JSON tree plus blobs.

    ``on_callable(obj)`` and ``on_other(obj)`` return the tag dicts for code and opaque objects;
    ``ref_of(array)`` returns a reference id for arrays passed by reference (or None).
    """

    def __init__(self, on_callable, on_other, ref_of=lambda a: None, sympy_srepr=None):
        self.blobs: list[bytes] = []
        self.on_callable, self.on_other, self.ref_of = on_callable, on_other, ref_of
        self.sympy_srepr = sympy_srepr
        self.nodes = 0

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def encode(self, value, depth: int = 0):
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise WireError("value nested too deeply or too large to send")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return {"l": [self.encode(v, depth + 1) for v in value.tolist()]}
            tag = {"a": self.blob(array_to_bytes(np.asarray(value)))}
            ref = self.ref_of(value)
            if ref is not None:
                tag["r"] = ref
            return tag
        if isinstance(value, np.generic):
            if isinstance(value, np.object_):
                return self.encode(value.item(), depth + 1)
            return {"s": self.blob(array_to_bytes(np.asarray(value)))}
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, complex):
            return {"c": [value.real, value.imag]}
        if isinstance(value, (list, tuple)):
            items = [self.encode(v, depth + 1) for v in value]
            return {"t": items} if isinstance(value, tuple) else {"l": items}
        if isinstance(value, dict):
            return {"d": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]}
        if self.sympy_srepr is not None:
            text = self.sympy_srepr(value)
            if text is not None:
                return {"sym": text}
        if callable(value):
            return self.on_callable(value)
        return self.on_other(value)


def decode(tree, blobs, *, on_callable, on_other, on_callback=None, on_sympy=None, on_ref=None):
    """Rebuild a value from :meth:`Encoder.encode`'s output; unknown tags raise WireError."""
    count = [0]

    def walk(node, depth):
        count[0] += 1
        if depth > MAX_DEPTH or count[0] > MAX_NODES:
            raise WireError("value nested too deeply or too large")
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, dict) and len(node) >= 1:
            if "a" in node:
                array = bytes_to_array(blobs[node["a"]])
                return on_ref(node["r"], array) if ("r" in node and on_ref) else array
            if "s" in node:
                return bytes_to_array(blobs[node["s"]])[()]
            if "l" in node:
                return [walk(v, depth + 1) for v in node["l"]]
            if "t" in node:
                return tuple(walk(v, depth + 1) for v in node["t"])
            if "d" in node:
                return {walk(k, depth + 1): walk(v, depth + 1) for k, v in node["d"]}
            if "c" in node:
                return complex(float(node["c"][0]), float(node["c"][1]))
            if "sym" in node and on_sympy is not None:
                return on_sympy(str(node["sym"]))
            if "f" in node:
                return on_callable(node)
            if "cb" in node and on_callback is not None:
                return on_callback(node)
            if "o" in node:
                return on_other(node)
        raise WireError(f"unknown value tag {str(node)[:80]}")

    try:
        return walk(tree, 0)
    except (IndexError, KeyError, TypeError, ValueError) as error:
        raise WireError(f"malformed value ({type(error).__name__})") from None
