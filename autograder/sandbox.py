"""Start the runner (:mod:`autograder.runner`) inside bubblewrap and talk to it.

The sandbox sees a read-only copy of what the learner's code needs (the system's ``/usr``, the
Python installation, the virtual environment, the ``idivkit`` package and the MNIST file), an
empty private ``/tmp``, no network, no other process, and none of the course folder: no
gradebook, no instructor notebook, no other submission. The runner runs as an unprivileged
user (``nobody``) with limits on memory, CPU time, processes, file size and open files, and
everything in the sandbox is killed when the session closes.

Without bubblewrap, :class:`Session` refuses to start unless ``sandboxed=False`` is passed
(``idivkit-grade grade --no-sandbox``): then the runner is a plain subprocess with the same
limits, which protects nothing from a hostile notebook.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from . import wire

HERE = Path(__file__).resolve().parent
NOBODY = 65534


class SandboxError(RuntimeError):
    """The sandbox could not start, died, or broke the protocol."""


class SandboxTimeout(SandboxError):
    """No answer before the deadline."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox (per process where the kernel counts so)."""

    memory_bytes: int = 8 * 2**30      # address space (TensorFlow reserves much of it)
    cpu_seconds: int = 3600            # CPU time of the runner over the whole notebook
    processes: int = 512               # threads count too (TensorFlow starts many)
    file_bytes: int = 64 * 2**20       # largest file it may write
    open_files: int = 512
    tmp_bytes: int = 512 * 2**20       # size of its private /tmp
    startup_seconds: float = 120.0


def bwrap() -> str | None:
    """Path of bubblewrap, or None."""
    return shutil.which("bwrap")


def _mnist_file() -> Path | None:
    try:
        from idivkit.data import locate_mnist

        path = Path(locate_mnist(download=False)).resolve()
    except Exception:  # noqa: BLE001  (no local copy: lessons that need it fail in the sandbox)
        path = Path(os.environ.get("IDIVKIT_MNIST", "")).resolve() if os.environ.get("IDIVKIT_MNIST") else None
    return path if path and path.is_file() else None


def _read_only_paths() -> list[Path]:
    """The Python installation, the virtual environment and the idivkit package."""
    import idivkit

    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(idivkit.__file__).resolve().parent]
    unique = []
    for path in paths:
        if not any(path == p or p in path.parents for p in unique):
            unique = [p for p in unique if path not in p.parents] + [path]
    return unique


def _environment(mnist: Path | None) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/home", "LANG": "C.UTF-8",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "MPLCONFIGDIR": "/tmp/home/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "2"}
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = str(Path(libdir).resolve())
    for name in ("KERAS_BACKEND",):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if mnist:
        env["IDIVKIT_MNIST"] = "/data/mnist.npz"
    return env


def bwrap_command(runner_dir: Path, fds: tuple[int, int], mnist: Path | None, limits: Limits) -> list[str]:
    """The bubblewrap command line that starts the runner."""
    cmd = [bwrap() or "bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
           "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox",
           "--clearenv", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group",
                 "nsswitch.conf", "fonts", "mime.types"):
        if os.path.exists(f"/etc/{name}"):
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    made = {"/", "/usr", "/etc", "/tmp", "/dev", "/proc"}
    binds = [(p, p) for p in _read_only_paths()] + [(runner_dir, Path("/sandbox"))]
    if mnist:
        binds.append((mnist, Path("/data/mnist.npz")))
    for source, target in binds:
        for parent in reversed(target.parents):
            if str(parent) not in made:  # bwrap would create it 0700: unreadable for nobody
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        cmd += ["--ro-bind", str(source), str(target)]
    # The private /tmp is made by bwrap (root): open it to the unprivileged runner.
    cmd += ["--dev", "/dev", "--proc", "/proc", "--perms", "01777", "--size", str(limits.tmp_bytes),
            "--tmpfs", "/tmp", "--perms", "0777", "--dir", "/tmp/home", "--perms", "0777", "--dir", "/tmp/work",
            "--chdir", "/tmp/work"]
    for key, value in _environment(mnist).items():
        cmd += ["--setenv", key, value]
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    cmd += ["--", setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            sys.executable, "/sandbox/runner.py", str(fds[0]), str(fds[1])]
    return cmd


def _set_limits(limits: Limits):
    def apply():
        for which, value in ((resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_CPU, limits.cpu_seconds),
                             (resource.RLIMIT_NPROC, limits.processes), (resource.RLIMIT_FSIZE, limits.file_bytes),
                             (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))
    return apply


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
            cmd, cwd = bwrap_command(self._dir, fds, _mnist_file(), self.limits), None
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        else:
            cwd = self._dir / "work"
            cwd.mkdir()
            cmd = [sys.executable, str(self._dir / "runner.py"), str(fds[0]), str(fds[1])]
            mnist = _mnist_file()
            env = dict(_environment(None), HOME=str(self._dir), MPLCONFIGDIR=str(self._dir / ".mpl"),
                       PATH=os.environ.get("PATH", "/usr/bin:/bin"))
            env.pop("LD_LIBRARY_PATH", None)
            if mnist:
                env["IDIVKIT_MNIST"] = str(mnist)
        self._log = open(self._dir / "stderr.log", "wb")
        self.process = subprocess.Popen(cmd, pass_fds=fds, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=self._log, cwd=cwd, env=env, start_new_session=True,
                                        preexec_fn=_set_limits(self.limits))
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
