"""Start the runner (:mod:`autograder.runner`) inside bubblewrap and talk to it.

The sandbox sees a read-only copy of what the learner's code needs (the system's ``/usr``, the
Python installation, the virtual environment, the ``idivkit`` package and the MNIST file), an
empty private ``/tmp``, no network, no other process, and none of the course folder: no
gradebook, no instructor notebook, no other submission. The runner runs as an unprivileged
user (``nobody``) with limits on memory, CPU time, processes, file size and open files, and
everything in the sandbox is killed when the session closes.

This module says what the sandbox is (the bubblewrap command line, the limits, the
environment); :mod:`autograder.session` runs one and talks to it. Without bubblewrap, a session
refuses to start unless ``sandboxed=False`` is passed (``idivkit-grade grade --no-sandbox``):
then the runner is a plain subprocess with the same limits, which protects nothing from a
hostile notebook.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import sys
import sysconfig
from pathlib import Path

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
    threads: int = 2                   # BLAS / OpenMP / TensorFlow threads of the learner's code


def bwrap() -> str | None:
    """Path of bubblewrap, or None."""
    return shutil.which("bwrap")


def mnist_file() -> Path | None:
    try:
        from idivkit.data import locate_mnist

        path = Path(locate_mnist(download=False)).resolve()
    except Exception:  # noqa: BLE001  (no local copy: lessons that need it fail in the sandbox)
        path = Path(os.environ.get("IDIVKIT_MNIST", "")).resolve() if os.environ.get("IDIVKIT_MNIST") else None
    return path if path and path.is_file() else None


def _read_only_paths() -> list[Path]:
    """The Python installation, the virtual environment, the idivkit package and the committed
    results the later lessons read (``results/`` beside the package, or ``$IDIVKIT_RESULTS``):
    what a learner's Binder has, and nothing of the course folder."""
    import idivkit

    package = Path(idivkit.__file__).resolve().parent
    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), package]
    for results in (package.parent / "results", Path(os.environ.get("IDIVKIT_RESULTS", "") or "/nonexistent")):
        if results.is_dir():
            paths.append(results.resolve())
    unique = []
    for path in paths:
        if not any(path == p or p in path.parents for p in unique):
            unique = [p for p in unique if path not in p.parents] + [path]
    return unique


def thread_variables(threads: int) -> dict[str, str]:
    """The variables that size the thread pools of numpy's BLAS, OpenMP and TensorFlow."""
    n = str(max(1, int(threads)))
    return {name: n for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}


def environment(mnist: Path | None, threads: int = Limits.threads) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/home", "LANG": "C.UTF-8",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "MPLCONFIGDIR": "/tmp/home/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2", **thread_variables(threads)}
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = str(Path(libdir).resolve())
    for name in ("KERAS_BACKEND",):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if mnist:
        env["IDIVKIT_MNIST"] = "/data/mnist.npz"
    if os.environ.get("IDIVKIT_RESULTS") and Path(os.environ["IDIVKIT_RESULTS"]).is_dir():
        env["IDIVKIT_RESULTS"] = str(Path(os.environ["IDIVKIT_RESULTS"]).resolve())
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
    # The private /tmp first (made by bwrap as root: opened to the unprivileged runner), so that
    # read-only binds below it (a course checked out under /tmp) land on it, not under it.
    cmd += ["--perms", "01777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
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
    cmd += ["--dev", "/dev", "--proc", "/proc", "--perms", "0777", "--dir", "/tmp/home",
            "--perms", "0777", "--dir", "/tmp/work", "--chdir", "/tmp/work"]
    for key, value in environment(mnist, limits.threads).items():
        cmd += ["--setenv", key, value]
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    cmd += ["--", setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            sys.executable, "/sandbox/runner.py", str(fds[0]), str(fds[1])]
    return cmd


def set_limits(limits: Limits):
    def apply():
        for which, value in ((resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_CPU, limits.cpu_seconds),
                             (resource.RLIMIT_NPROC, limits.processes), (resource.RLIMIT_FSIZE, limits.file_bytes),
                             (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))
    return apply
