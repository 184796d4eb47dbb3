"""What the machine offers a process: the cores it may use, and freed memory given back.

``usable_cores`` counts the cores this process may run on (its CPU affinity, e.g. a container's
or ``taskset``'s limit), not all the machine's.

``release_freed_memory``, why: building and running a Keras model allocates and frees many
small blocks; glibc's allocator keeps the freed pages in the process, so an idle Jupyter kernel
that trained a model holds memory it no longer uses. On Binder (2 GB for JupyterLab and every
kernel together) that matters when nbgrader's Validate starts a second kernel beside the
learner's. ``malloc_trim(0)`` returns those pages; it changes no value and costs milliseconds.
Elsewhere (not glibc) nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["release_freed_memory", "usable_cores"]


def usable_cores() -> int:
    """The number of CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS (glibc's ``malloc_trim``); False where unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))
