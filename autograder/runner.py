"""The runner inside the sandbox: executes a learner's cells and answers the grader.

Started by :mod:`autograder.sandbox` as ``python runner.py FD_IN FD_OUT`` inside bubblewrap,
as an unprivileged user, with :mod:`wire` beside it. It executes cells with IPython's
InteractiveShell and answers requests (``exec``, ``get``, ``call``) with plain data. Nothing
it says is trusted: the grader judges every value itself. The runner may be patched by the
code it runs; that can only change the data a learner hands in, never a verdict.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wire  # noqa: E402  (the copy beside this file)

TEXT_CAP = 100_000      # characters of stdout/stderr kept per cell
IMAGE_CAP = 2_000_000   # bytes of one base64 image
MIMES = ("text/plain", "text/latex", "text/markdown", "image/png")


class _Capped:
    """A text stream that keeps the first TEXT_CAP characters."""

    def __init__(self):
        self.parts, self.size, self.dropped = [], 0, 0

    def write(self, text):
        text = str(text)
        room = TEXT_CAP - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def value(self):
        text = "".join(self.parts)
        return text + (f"\n... ({self.dropped} more characters not kept)\n" if self.dropped else "")


class Runner:
    def __init__(self, fd_in, fd_out):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.handles, self.next_handle = {}, 1
        self.refs = {}  # arrays passed by reference in the calls now running (for callbacks)
        self.outputs = []
        from IPython.core.interactiveshell import InteractiveShell

        self.shell = InteractiveShell.instance()
        self.shell._showtraceback = lambda *args, **kwargs: None  # errors are reported as data
        self.shell.display_pub.publish = self._publish
        hook = self.shell.displayhook
        hook.write_output_prompt = lambda: None
        hook.write_format_data = lambda data, md=None: self._publish(data, kind="execute_result")
        self.shell.enable_gui = lambda gui=None: None  # `%matplotlib inline` needs no event loop
        try:
            self.shell.enable_matplotlib("inline")
        except Exception:
            pass

    # -- outputs -------------------------------------------------------------------------
    def _publish(self, data, metadata=None, source=None, *, kind="display_data", **kwargs):
        kept = {}
        for mime in MIMES:
            value = data.get(mime) if isinstance(data, dict) else None
            if isinstance(value, str) and (mime != "image/png" or len(value) <= IMAGE_CAP):
                kept[mime] = value[:TEXT_CAP]
        if kept:
            self.outputs.append({"output_type": kind, "data": kept})

    def execute(self, source):
        self.outputs = []
        out, err = _Capped(), _Capped()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        error = None
        try:
            result = self.shell.run_cell(source, store_history=True)
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                error = {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}
        except BaseException as exc:  # noqa: BLE001  (interrupts while IPython cleans up)
            error = {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}
        finally:
            sys.stdout, sys.stderr = saved
        outputs = []
        for name, stream in (("stdout", out), ("stderr", err)):
            if stream.value():
                outputs.append({"output_type": "stream", "name": name, "text": stream.value()})
        return {"op": "done", "outputs": outputs + self.outputs, "error": error}

    # -- values --------------------------------------------------------------------------
    def _handle(self, obj):
        handle = self.next_handle
        self.next_handle += 1
        self.handles[handle] = obj
        return handle

    def encoder(self, refs=None):
        ids = {id(a): r for r, a in (refs or {}).items()}

        def on_callable(obj):
            if isinstance(obj, _Callback):
                return {"cb": obj.cb}
            return {"f": self._handle(obj), "n": str(getattr(obj, "__name__", ""))[:100]}

        def on_other(obj):
            return {"o": self._handle(obj), "type": type(obj).__name__[:100]}

        return wire.Encoder(on_callable, on_other, ref_of=lambda a: ids.get(id(a)), sympy_srepr=_srepr)

    def decode(self, tree, blobs, refs):
        def on_ref(ref, array):
            refs[ref] = array
            return array

        def on_sympy(text):
            import sympy

            return sympy.sympify(text)  # trusted direction: the grader's own values

        return wire.decode(tree, blobs, on_callable=lambda n: self.handles[n["f"]],
                           on_other=lambda n: self.handles[n["o"]],
                           on_callback=lambda n: _Callback(self, n["cb"]), on_sympy=on_sympy,
                           on_ref=on_ref)

    def reply_value(self, value, refs=None):
        encoder = self.encoder(refs)
        tree = encoder.encode(value)
        ref_trees = {str(r): encoder.encode(a) for r, a in (refs or {}).items()}
        return {"op": "result", "value": tree, "refs": ref_trees}, encoder.blobs

    def get(self, names):
        found, missing = {}, []
        for name in names:
            if name in self.shell.user_ns:
                found[name] = self.shell.user_ns[name]
            else:
                missing.append(name)
        encoder = self.encoder()
        values = {}
        for name, value in found.items():
            try:
                values[name] = encoder.encode(value)
            except Exception:
                values[name] = {"o": self._handle(value), "type": type(value).__name__[:100]}
        return {"op": "values", "values": values, "missing": missing}, encoder.blobs

    def call(self, message, blobs):
        refs = {}
        outer = self.refs
        self.refs = {**outer, **{}}
        try:
            func = self.handles[message["handle"]]
            args = self.decode(message["args"], blobs, refs)
            kwargs = self.decode(message["kwargs"], blobs, refs)
            self.refs = {**outer, **refs}
            value = func(*args, **kwargs)
            return self.reply_value(value, refs)
        except BaseException as exc:  # noqa: BLE001  (the learner's error is data too)
            return {"op": "raise", "ename": type(exc).__name__, "evalue": str(exc)[:2000]}, []
        finally:
            self.refs = outer

    # -- loop ----------------------------------------------------------------------------
    def serve(self, until_result=False):
        """Answer requests; with ``until_result``, return the first result (of a callback)."""
        while True:
            message, blobs = wire.recv(self.fd_in)
            op = message.get("op")
            if op in ("result", "raise") and until_result:
                return message, blobs
            if op == "exec":
                reply, out = self.execute(str(message["source"])), []
            elif op == "get":
                reply, out = self.get([str(n) for n in message["names"]])
            elif op == "call":
                reply, out = self.call(message, blobs)
            elif op == "set":  # names a test cell bound that later cells of the notebook read
                self.shell.user_ns.update(self.decode(message["values"], blobs, {}))
                reply, out = {"op": "done", "outputs": [], "error": None}, []
            elif op == "quit":
                return None
            else:
                reply, out = {"op": "raise", "ename": "ProtocolError", "evalue": f"unknown op {op!r}"}, []
            try:
                wire.send(self.fd_out, reply, out)
            except wire.WireError as error:
                wire.send(self.fd_out, {"op": "raise", "ename": "ValueError",
                                        "evalue": f"the result could not be sent: {error}"})


class _Callback:
    """A function of the grader (a test's lambda): calling it asks the grader to run it."""

    def __init__(self, runner, cb):
        self.runner, self.cb = runner, cb

    def __call__(self, *args, **kwargs):
        encoder = self.runner.encoder(self.runner.refs)
        header = {"op": "callback", "cb": self.cb, "args": encoder.encode(list(args)),
                  "kwargs": encoder.encode(dict(kwargs))}
        wire.send(self.runner.fd_out, header, encoder.blobs)
        message, blobs = self.runner.serve(until_result=True)
        if message["op"] == "raise":
            raise RuntimeError(f"{message.get('ename')}: {message.get('evalue')}")
        return self.runner.decode(message["value"], blobs, {})


def _srepr(value):
    module = type(value).__module__ or ""
    if not module.startswith("sympy"):
        return None
    import sympy

    if isinstance(value, sympy.Basic):
        return sympy.srepr(value)
    return None


def main():
    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    runner = Runner(fd_in, fd_out)
    wire.send(fd_out, {"op": "ready"})
    runner.serve()


if __name__ == "__main__":
    main()
