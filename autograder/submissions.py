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

Nothing is trusted about an archive or a folder: links are never followed, entries whose path
leaves the archive (``../``, absolute) are refused, sizes are checked before anything is read
(:data:`MAX_NOTEBOOK_BYTES` per notebook, :data:`MAX_TOTAL_BYTES` in all) and reads are bounded
whatever the archive claims. Each refused notebook gets a CSV row saying why. File names that
are not UTF-8 are shown with escapes. Student ids are plain ASCII; a name that had to be
changed (accents, spaces) gets a short hash of the original, so two different names never
become one student.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from .archive import Refused, entries as archive_entries

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


def _inside(path: str) -> str:
    """``path`` without leading ``/`` and ``..`` parts: where it names a student and a lesson."""
    return "/".join(p for p in path.split("/") if p not in ("", ".", "..")) or "unnamed"


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
    """A plain-ASCII id for a student's name; names that had to change get a short hash of the
    original (``José`` -> ``Jose-1f3a9c``), so distinct names never become one id."""
    name = unicodedata.normalize("NFC", raw)
    folded = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    clean = STUDENT_ID.sub("_", folded).strip("._-")[:60]
    if clean == name or not name:
        return clean
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    return f"{clean or 'student'}-{digest}"


def find_submissions(source: Path | str, lessons: list[str], grade_ids: dict[str, set[str]]) -> Found:
    """Map every notebook under ``source`` (folder or .zip) to a student and a lesson."""
    source = Path(source)
    entries, skipped = [], []
    for path, load, mtime in archive_entries(source):
        if _ignored(path) and not getattr(load, "refused", None):  # a refused entry always gets its row
            continue
        if not path.lower().endswith(".ipynb"):
            refused = getattr(load, "refused", None)
            skipped.append((path, f"refused: {refused}" if refused else "not a notebook (.ipynb)"))
            continue
        entries.append((path, load, mtime))

    # Look through one wrapping folder (batch/alice/00_welcome.ipynb), but not a student's own
    # folder in nbgrader's layout (alice/00_welcome/00_welcome.ipynb).
    paths = [PurePosixPath(_inside(p)) for p, _, _ in entries]
    strip = 0
    if len({p.parts[0] for p in paths}) == 1:
        flat_inside = any(len(p.parts) == 2 and "__" in p.stem for p in paths)
        deeper = [p.parts[1] for p in paths if len(p.parts) >= 3]
        if flat_inside or (deeper and not any(lesson_from_name(s, lessons)[0] for s in deeper)):
            strip = 1

    found = []
    for path, load, mtime in entries:
        parts = PurePosixPath(_inside(path)).parts[strip:]
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
        except Refused as why:
            sub.error = f"refused: {why}"
        except RecursionError:
            sub.error = "not a valid notebook (nested too deeply)"
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
