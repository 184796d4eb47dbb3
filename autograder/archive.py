"""Read the files of a submission folder or .zip without trusting it.

Links are never followed, entries whose path leaves the archive are refused, sizes are checked
before anything is read and every read is bounded, whatever the archive claims. A refused
entry still comes out, with a loader that raises :class:`Refused` saying why, so it gets a row.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import zipfile
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_TOTAL_BYTES = 1 * 2**30
MAX_ENTRIES = 20_000


class Refused(Exception):
    """An entry that is not read: a link, a path escape, too large."""


def shown(path: str) -> str:
    """A path as text for rows and messages, whatever bytes its name had."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _refuse(why: str):
    def load():
        raise Refused(why)
    load.refused = why
    return load


def _bounded(read, limit: int):
    def load():
        data = read(limit + 1)
        if len(data) > limit:
            raise Refused(f"larger than {limit // 2**20} MB")
        return data
    return load


def entries(source: Path):
    """(relative posix path, bytes-loader, mtime) of every file in a folder or a zip; the loader
    raises :class:`Refused` for entries that must not be read."""
    total, count = 0, 0
    if source.is_dir():
        for folder, dirs, files in os.walk(source, followlinks=False):
            dirs.sort()
            for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(folder, d))):
                full = os.path.join(folder, name)
                rel = shown(os.path.relpath(full, source).replace(os.sep, "/"))
                info = os.lstat(full)
                count += 1
                if stat.S_ISLNK(info.st_mode):
                    yield rel, _refuse("a symbolic link (links are never followed)"), 0.0
                elif not stat.S_ISREG(info.st_mode):
                    yield rel, _refuse("not a regular file"), 0.0
                elif info.st_size > MAX_NOTEBOOK_BYTES:
                    yield rel, _refuse(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"), info.st_mtime
                elif total + info.st_size > MAX_TOTAL_BYTES or count > MAX_ENTRIES:
                    yield rel, _refuse("the batch is over its size limit"), info.st_mtime
                else:
                    total += info.st_size
                    yield rel, _bounded(lambda n, f=full: _read_file(f, n), MAX_NOTEBOOK_BYTES), info.st_mtime
    elif zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            try:
                mtime = datetime.datetime(*info.date_time).timestamp()
            except (ValueError, OverflowError):
                mtime = 0.0
            count += 1
            if name.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", name):
                yield shown(name), _refuse("its path leaves the archive (../ or absolute)"), mtime
            elif stat.S_ISLNK(info.external_attr >> 16):
                yield "/".join(parts), _refuse("a symbolic link (links are never followed)"), mtime
            elif info.flag_bits & 0x1:
                yield "/".join(parts), _refuse("encrypted"), mtime
            elif info.file_size > MAX_NOTEBOOK_BYTES:
                yield "/".join(parts), _refuse(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"), mtime
            elif total + info.file_size > MAX_TOTAL_BYTES or count > MAX_ENTRIES:
                yield "/".join(parts), _refuse("the archive is over its size limit"), mtime
            else:
                total += info.file_size
                yield "/".join(parts), _bounded(lambda n, i=info: _read_member(archive, i, n),
                                                MAX_NOTEBOOK_BYTES), mtime
    else:
        raise FileNotFoundError(f"{source} is neither a folder nor a .zip file")


def _read_file(path: str, limit: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(limit)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """At most ``limit`` bytes, however large the archive says the entry is."""
    try:
        with archive.open(info) as handle:
            return handle.read(limit)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
        raise Refused(f"unreadable in the archive ({type(error).__name__})") from None
