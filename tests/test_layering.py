"""Data flows one way, and the imports say so (#37).

Executors run the physical plan: from the planner they import only the physical plan's
types (``semql.planner.physical``), never a rule, the cost model, the logical plan or
the planner's SQL helpers, so no behaviour is decided twice. The planner imports no
executor and not the face; ``grammar/`` imports neither. The check reads every import
statement of the source, including those under ``TYPE_CHECKING`` and inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHYSICAL = "semql.planner.physical"


def imports(folder: Path, package: str) -> list[tuple[str, int, str]]:
    """(file, line, imported name) for every import under ``folder``, whose installed
    name is ``package``; relative imports resolved, ``from m import n`` read as ``m.n``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).with_suffix("")
        here = [*package.split("."), *rel.parts[:-1]]  # the module's package
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                names = [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            found += [(str(path.relative_to(folder.parent)), node.lineno, n) for n in names]
    return found


def planner_internals(names: list[tuple[str, int, str]]) -> list[str]:
    return [
        f"{file}:{line} imports {name}"
        for file, line, name in names
        if name.startswith("semql.planner.") and not name.startswith(PHYSICAL + ".")
    ]


def test_executors_import_only_the_physical_plan_from_the_planner():
    bad = planner_internals(imports(ROOT / "executors", "semql.executors"))
    assert not bad, "\n".join(bad)


def test_the_planner_imports_no_executor_and_not_the_face():
    bad = [
        f"{file}:{line} imports {name}"
        for file, line, name in imports(ROOT / "planner", "semql.planner")
        if name.startswith(("semql.executors", "semql.connection", "semql.cli", "semql.shell"))
    ]
    assert not bad, "\n".join(bad)


def test_grammar_imports_neither_planner_nor_executors():
    bad = [
        f"{file}:{line} imports {name}"
        for file, line, name in imports(ROOT / "grammar", "semql.grammar")
        if name.startswith(("semql.planner", "semql.executors"))
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from semql.planner.cost import DEFAULT_PROFILE\n", True),
        ("from ...planner.rules import dedup\n", True),
        ("from semql.planner.physical import LMStage\n", False),
        ("from semql.planner.physical.stages import LMStage\n", False),
        ("from semql.planner import logical as L\n", True),
        ("from ...planner.physical import LMTask\n", False),
        ("import semql.planner.logical\n", True),
    ],
)
def test_the_check_catches_a_planner_import(tmp_path, source, expected):
    """The check itself can fail: an executor module importing a planner internal
    (absolute or relative) is caught; the physical plan's types are not."""
    folder = tmp_path / "executors"
    (folder / "operators").mkdir(parents=True)
    (folder / "operators" / "probe.py").write_text(source)
    assert bool(planner_internals(imports(folder, "semql.executors"))) is expected
