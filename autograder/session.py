"""One sandboxed runner: start it, exchange frames with deadlines, interrupt it, kill it all.

See :mod:`autograder.sandbox` for what the sandbox is; :mod:`autograder.remote` speaks the
protocol over a :class:`Session`.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import wire
from .sandbox import HERE, Limits, SandboxError, SandboxTimeout, bwrap, bwrap_command, environment, mnist_file, \
    set_limits


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Session:
    """One runner, sandboxed unless ``sandboxed=False``; use as a context manager."""

    def __init__(self, *, sandboxed: bool = True, limits: Limits = Limits()):
        if sandboxed and not bwrap():
            raise SandboxError("bubblewrap (bwrap) is not installed: install it (apt-get install bubblewrap) "
                               "or pass --no-sandbox to grade without isolation")
        self.sandboxed, self.limits = sandboxed, limits
        self.process = None
        self._dir = None

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> "Session":
        self._dir = Path(tempfile.mkdtemp(prefix="idivkit-sandbox-"))
        os.chmod(self._dir, 0o755)
        for name in ("runner.py", "wire.py"):
            shutil.copy(HERE / name, self._dir / name)
            os.chmod(self._dir / name, 0o644)
        to_runner, from_grader = os.pipe()[::-1]  # (write end kept here, read end for the runner)
        from_runner, to_grader = os.pipe()
        self._in, self._out = from_runner, to_runner
        fds = (from_grader, to_grader)
        if self.sandboxed:
            cmd, cwd = bwrap_command(self._dir, fds, mnist_file(), self.limits), None
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        else:
            cwd = self._dir / "work"
            cwd.mkdir()
            cmd = [sys.executable, str(self._dir / "runner.py"), str(fds[0]), str(fds[1])]
            mnist = mnist_file()
            env = dict(environment(None, self.limits.threads), HOME=str(self._dir), MPLCONFIGDIR=str(self._dir / ".mpl"),
                       PATH=os.environ.get("PATH", "/usr/bin:/bin"))
            env.pop("LD_LIBRARY_PATH", None)
            if mnist:
                env["IDIVKIT_MNIST"] = str(mnist)
        self._log = open(self._dir / "stderr.log", "wb")
        self.process = subprocess.Popen(cmd, pass_fds=fds, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=self._log, cwd=cwd, env=env, start_new_session=True,
                                        preexec_fn=set_limits(self.limits))
        os.close(fds[0])
        os.close(fds[1])
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        try:
            message, _ = self.receive(time.monotonic() + self.limits.startup_seconds)
        except SandboxError as error:
            tail = self.stderr_tail()
            self.close()
            raise SandboxError(f"the sandbox did not start ({error}): {tail}") from None
        if message.get("op") != "ready":
            self.close()
            raise SandboxError("the sandbox did not start")
        return self

    def stderr_tail(self, n: int = 600) -> str:
        try:
            return (self._dir / "stderr.log").read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def interrupt(self) -> None:
        """SIGINT to every process in the sandbox (a KeyboardInterrupt in the learner's code)."""
        if self.process is not None:
            for pid in _descendants(self.process.pid):
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass

    def close(self) -> None:
        """Kill everything in the sandbox and remove its files."""
        if self.process is not None:
            for pid in [self.process.pid] + _descendants(self.process.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.process.wait()
            self.process = None
        for fd in ("_in", "_out"):
            if getattr(self, fd, None) is not None:
                os.close(getattr(self, fd))
                setattr(self, fd, None)
        if self._dir is not None:
            self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- frames with deadlines -----------------------------------------------------------
    def _reader(self, deadline: float):
        def read(fd, n):
            chunks, left = [], n
            while left:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise SandboxTimeout("no answer before the deadline")
                ready, _, _ = select.select([fd], [], [], min(wait, 1.0))
                if not ready:
                    if not self.alive():
                        raise SandboxError("the runner died")
                    continue
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    raise SandboxError("the runner died")
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        return read

    def _writer(self, deadline: float):
        def write(fd, data):
            view = memoryview(data)
            while view:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise SandboxTimeout("the runner stopped reading")
                _, ready, _ = select.select([], [fd], [], min(wait, 1.0))
                if ready:
                    try:
                        view = view[os.write(fd, view[: 1 << 16]):]
                    except BrokenPipeError:
                        raise SandboxError("the runner died") from None
                elif not self.alive():
                    raise SandboxError("the runner died")
        return write

    def send(self, header: dict, blobs=(), deadline: float | None = None) -> None:
        wire.send(self._out, header, blobs, write=self._writer(deadline or time.monotonic() + 600))

    def receive(self, deadline: float, max_bytes: int = 1 << 30):
        try:
            return wire.recv(self._in, max_bytes, read=self._reader(deadline))
        except wire.WireError as error:
            raise SandboxError(str(error)) from None
