"""The package's shape: no import cycles, one place for each thing that must agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "w2v"


def _imports(path: Path) -> set[str]:
    """w2v modules that `path` imports anywhere (functions included), except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("w2v.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "w2v":
                found |= {a.name for a in node.names if a.name in modules}
            elif node.module.startswith("w2v."):
                found.add(node.module.split(".")[1])
    return found - {path.stem, "__init__"}


def test_no_module_of_w2v_imports_itself_through_others() -> None:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, stack + [node])

    for start in graph:
        visit(start, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_the_kernel_job_is_built_in_one_module() -> None:
    places = [p for p in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
              if re.search(r"\bJob\(", p.read_text(encoding="utf-8")) and p.name != "test_structure.py"]
    assert [p.relative_to(ROOT).as_posix() for p in places] == ["w2v/native.py"]


def test_run_folder_file_names_are_defined_in_one_module() -> None:
    names = re.compile(r"""["'](config\.json|vocab\.tsv|model\.pt|checkpoint\.pt|ids\.npy|offsets\.npy)["']""")
    places = sorted(p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
                    if names.search(p.read_text(encoding="utf-8")))
    assert places == ["w2v/runfolder.py"]
