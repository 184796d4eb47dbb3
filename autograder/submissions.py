"""Find the submissions in a folder or a .zip and tell whose and which lesson each one is.

Accepted layouts (``<NN_name>`` is a lesson, e.g. ``01_autoencoder``):

1. ``SUBMISSIONS/<student>/<NN_name>.ipynb``               one folder per student
2. ``SUBMISSIONS/<student>/<NN_name>/<NN_name>.ipynb``     nbgrader's own layout
3. ``SUBMISSIONS/<student>__<NN_name>.ipynb``              flat, two underscores
4. ``SUBMISSIONS/<NN_name>/<student>.ipynb``               one folder per lesson

The same inside a ``.zip``; a single folder wrapping everything (``batch/alice/...``) is
looked through. A file name that only *contains* the lesson name, as browsers and Binder
save downloads (``01_autoencoder (1).ipynb``, ``01_autoencoder-Copy1.ipynb``), is accepted;
a notebook whose name says nothing is recognised by its graded cells. Hidden files,
``__MACOSX/`` and ``.ipynb_checkpoints/`` are ignored; anything else that is not a notebook is
skipped and listed.
"""

from __future__ import annotations

import datetime
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

STUDENT_ID = re.compile(r"[^A-Za-z0-9_.@-]+")


@dataclass
class Submission:
    """One notebook found: where, whose, which lesson; ``error`` set when it cannot be graded."""

    path: str
    student: str = ""
    lesson: str = ""
    notebook: nbformat.NotebookNode | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""
    mtime: float = 0.0
    exact_name: bool = False


@dataclass
class Found:
    submissions: list[Submission]
    skipped: list[tuple[str, str]]  # (path, why)


def _entries(source: Path):
    """(relative posix path, bytes-loader, mtime) of every file in a folder or a zip."""
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            yield path.relative_to(source).as_posix(), path.read_bytes, path.stat().st_mtime
    elif zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if not info.is_dir():
                mtime = datetime.datetime(*info.date_time).timestamp()
                yield info.filename, (lambda i=info: archive.read(i)), mtime
    else:
        raise FileNotFoundError(f"{source} is neither a folder nor a .zip file")


def _ignored(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return any(p.startswith(".") or p == "__MACOSX" or p == "__pycache__" for p in parts)


def lesson_from_name(name: str, lessons: list[str]) -> tuple[str, bool]:
    """(lesson, exact) from a file or folder name; ("", False) if it names none."""
    stem = name.lower()
    if stem in lessons:
        return stem, True
    for lesson in lessons:
        if lesson in stem:
            return lesson, False
    number = re.match(r"^(?:lesson|lecture|l)?[ _-]*(\d{1,2})(?:\D|$)", stem)
    if number:
        for lesson in lessons:
            if int(lesson[:2]) == int(number.group(1)):
                return lesson, False
    return "", False


def lesson_from_cells(nb, grade_ids: dict[str, set[str]]) -> str:
    """The lesson whose grade_ids the notebook shares most, or ""."""
    ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}
    scores = {lesson: len(ids & known) for lesson, known in grade_ids.items()}
    best = max(scores, key=lambda k: (scores[k], k), default="")
    return best if best and scores[best] > 0 else ""


def clean_student_id(raw: str) -> str:
    return STUDENT_ID.sub("_", raw).strip("._-")


def find_submissions(source: Path | str, lessons: list[str], grade_ids: dict[str, set[str]]) -> Found:
    """Map every notebook under ``source`` (folder or .zip) to a student and a lesson."""
    source = Path(source)
    entries, skipped = [], []
    for path, load, mtime in _entries(source):
        if _ignored(path):
            continue
        if not path.lower().endswith(".ipynb"):
            skipped.append((path, "not a notebook (.ipynb)"))
            continue
        entries.append((path, load, mtime))

    # Look through one wrapping folder (batch/alice/00_welcome.ipynb), but not a student's own
    # folder in nbgrader's layout (alice/00_welcome/00_welcome.ipynb).
    paths = [PurePosixPath(p) for p, _, _ in entries]
    strip = 0
    if len({p.parts[0] for p in paths}) == 1:
        flat_inside = any(len(p.parts) == 2 and "__" in p.stem for p in paths)
        deeper = [p.parts[1] for p in paths if len(p.parts) >= 3]
        if flat_inside or (deeper and not any(lesson_from_name(s, lessons)[0] for s in deeper)):
            strip = 1

    found = []
    for path, load, mtime in entries:
        parts = PurePosixPath(path).parts[strip:]
        stem = PurePosixPath(path).stem
        sub = Submission(path=path, mtime=mtime)
        found.append(sub)
        if len(parts) == 1:
            if "__" in stem:
                raw_student, lesson_part = stem.split("__", 1)
            else:
                raw_student, lesson_part = "", stem
        elif len(parts) == 2 and parts[0] in lessons and not lesson_from_name(stem, lessons)[0]:
            raw_student, lesson_part = stem, parts[0]  # <NN_name>/<student>.ipynb
        else:
            raw_student, lesson_part = parts[0], stem
        sub.lesson, sub.exact_name = lesson_from_name(lesson_part, lessons)
        if not sub.lesson and len(parts) >= 3:  # student/<NN_name>/<anything>.ipynb
            sub.lesson, _ = lesson_from_name(parts[-2], lessons)
        sub.student = clean_student_id(raw_student)
        if raw_student and sub.student != raw_student:
            sub.notes.append(f"student id {raw_student!r} written as {sub.student!r}")
        try:
            text = load()
            sub.notebook = nbformat.reads(text.decode("utf-8"), as_version=4)
        except (UnicodeDecodeError, json.JSONDecodeError, nbformat.reader.NotJSONError) as error:
            sub.error = f"not a valid notebook (invalid JSON: {str(error).splitlines()[0][:120]})"
        except Exception as error:  # nbformat validation and reader errors
            sub.error = f"not a valid notebook ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
        if sub.notebook is not None:
            by_cells = lesson_from_cells(sub.notebook, grade_ids)
            if not sub.lesson and by_cells:
                sub.lesson = by_cells
                sub.notes.append(f"file name {PurePosixPath(path).name!r} names no lesson; "
                                 f"recognised as {by_cells} by its graded cells")
            elif sub.lesson and by_cells and by_cells != sub.lesson and not lesson_from_cells(
                    sub.notebook, {sub.lesson: grade_ids.get(sub.lesson, set())}):
                sub.notes.append(f"named as {sub.lesson} but its graded cells are {by_cells}'s; "
                                 f"graded as {by_cells}")
                sub.lesson = by_cells
            elif sub.lesson and not sub.exact_name:
                sub.notes.append(f"file name {PurePosixPath(path).name!r} taken as {sub.lesson}")
        if not sub.error:
            if not sub.student:
                sub.error = ("no student id: put the notebook in a folder named after the student, "
                             "or name it <student>__<NN_name>.ipynb")
            elif not sub.lesson:
                sub.error = ("cannot tell which lesson this is: name it <NN_name>.ipynb "
                             f"(one of {', '.join(lessons)})")
    return Found(_deduplicate(found), skipped)


def _deduplicate(found: list[Submission]) -> list[Submission]:
    """Keep one notebook per (student, lesson): exact name first, then the newest, then path."""
    groups: dict[tuple[str, str], list[Submission]] = {}
    for sub in found:
        if sub.error:
            continue
        groups.setdefault((sub.student, sub.lesson), []).append(sub)
    keep = []
    for sub in found:
        if sub.error:
            keep.append(sub)
            continue
        group = groups[(sub.student, sub.lesson)]
        best = sorted(group, key=lambda s: (not s.exact_name, -s.mtime, s.path))[0]
        if sub is best:
            others = [s.path for s in group if s is not best]
            if others:
                sub.notes.append(f"also found {', '.join(others)} (ignored: one notebook per lesson)")
            keep.append(sub)
    return keep
