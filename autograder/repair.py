"""Put a submission's graded cells back in order before nbgrader sees it.

nbgrader refuses a whole notebook when two cells share a grade_id, and grades nothing of a cell
whose metadata is gone. Learners do both by accident (a copied answer cell, a notebook saved by
another editor), and a hostile notebook does it on purpose (a fake test cell worth 100 points).
So, against the student version (which holds no solutions), each graded cell is:

* kept with the course's metadata, whatever metadata the submission claims;
* when duplicated: the last copy of an answer (the one that ran last) keeps it, the first copy
  of a test or locked cell keeps it, the others become plain cells;
* when its metadata was stripped: found again by its content (the same test source, or the
  answer cell that defines the same names), else restored from the student version.

Cells that claim a grade_id the course does not have become plain cells.
"""

from __future__ import annotations

import ast
import copy

import nbformat


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _grade_id(cell) -> str | None:
    return _meta(cell).get("grade_id")


def _defines(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _same_code(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _plain(cell) -> None:
    cell.metadata.pop("nbgrader", None)


def restore_cells(nb, release_nb, source_nb=None) -> list[str]:
    """Repair ``nb`` in place against the student version ``release_nb``; return notes.

    ``source_nb`` (the instructor version) only tells an edited test cell from the original
    for the note; nbgrader's OverwriteCells puts the instructor's test code back anyway.
    """
    release = {_grade_id(c): c for c in release_nb.cells if _grade_id(c)}
    instructor = {_grade_id(c): c.source for c in (source_nb.cells if source_nb else []) if _grade_id(c)}
    notes, unknown, duplicates, adopted, restored, edited = [], [], [], [], [], []

    # 1. Foreign grade_ids become plain cells; duplicates keep one labelled copy.
    positions: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        grade_id = _grade_id(cell)
        if grade_id is None:
            _plain(cell) if "nbgrader" in cell.get("metadata", {}) else None
            continue
        if grade_id not in release:
            unknown.append(grade_id)
            _plain(cell)
            continue
        positions.setdefault(grade_id, []).append(index)
    for grade_id, where in positions.items():
        if len(where) > 1:
            keep = where[-1] if _meta(release[grade_id]).get("solution") else where[0]
            for index in where:
                if index != keep:
                    _plain(nb.cells[index])
            duplicates.append(grade_id)
            positions[grade_id] = [keep]

    # 2. Missing cells: found again by content, else restored from the student version.
    anchor = -1
    for cell in release_nb.cells:
        grade_id = _grade_id(cell)
        if not grade_id:
            continue
        present = {_grade_id(c): i for i, c in enumerate(nb.cells) if _grade_id(c)}
        if grade_id in present:
            anchor = present[grade_id]
            mine = nb.cells[anchor]
            if _meta(cell).get("locked") and not _meta(cell).get("solution") \
                    and mine.source not in (cell.source, instructor.get(grade_id)):
                edited.append(grade_id)
        else:
            match = _find(nb, cell, anchor, instructor.get(grade_id))
            if match is not None:
                anchor = match
                if _meta(cell).get("solution") or _meta(cell).get("grade"):
                    adopted.append(grade_id)
            else:
                fresh = nbformat.from_dict(copy.deepcopy(dict(cell)))
                if fresh.cell_type == "code":
                    fresh.outputs, fresh.execution_count = [], None
                fresh["id"] = f"restored-{grade_id}"[:64].replace("_", "-")
                nb.cells.insert(anchor + 1, fresh)
                anchor += 1
                if _meta(cell).get("solution") or _meta(cell).get("grade"):
                    restored.append(grade_id)  # locked text and figures come back unlisted
        # 3. The course's metadata and cell type, whatever the submission claims.
        mine = nb.cells[anchor]
        mine.metadata["nbgrader"] = copy.deepcopy(dict(cell.metadata["nbgrader"]))
        if mine.cell_type != cell.cell_type:
            mine.cell_type = cell.cell_type
            if cell.cell_type == "code":
                mine.outputs, mine.execution_count = [], None
            else:
                mine.pop("outputs", None)
                mine.pop("execution_count", None)
    for label, items in (("ignored grade metadata the course does not have", unknown),
                         ("duplicated cell(s)", duplicates),
                         ("recognised cell(s) whose metadata was lost", adopted),
                         ("restored deleted cell(s)", restored)):
        if items:
            notes.append(f"{label} {', '.join(dict.fromkeys(items))}"
                         + ("; graded the last copy of each answer" if label.startswith("dup") else ""))
    if edited:
        notes.append(f"edited test cell(s) {', '.join(edited)} replaced by the original")
    nb.metadata = copy.deepcopy(release_nb.metadata)
    return notes


def _find(nb, release_cell, anchor: int, instructor_source: str | None = None) -> int | None:
    """An unlabelled cell of ``nb`` that is ``release_cell`` with its metadata lost: an answer
    cell that defines the same names (as the instructor's solution does), or a test or locked
    cell with the same code (the student's or the instructor's version of it)."""
    meta = _meta(release_cell)
    candidates = [i for i, c in enumerate(nb.cells) if _grade_id(c) is None and c.cell_type == release_cell.cell_type]
    if meta.get("solution") and release_cell.cell_type == "code":
        wanted = _defines(release_cell.source) | _defines(instructor_source or "")
        matches = [i for i in candidates if wanted and wanted <= _defines(nb.cells[i].source)]
        return matches[-1] if matches else None  # the last definition is the one that counts
    sources = [release_cell.source] + ([instructor_source] if instructor_source else [])
    matches = [i for i in candidates if any(_same_code(nb.cells[i].source, s) for s in sources)]
    after = [i for i in matches if i > anchor]
    return (after or matches or [None])[0]
