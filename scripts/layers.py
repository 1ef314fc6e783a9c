#!/usr/bin/env python3
"""The import graph of the project, checked: `python scripts/layers.py` from the project's root.

The team's layers tool, kept in the repository so that `./scripts/lint` (which runs it) needs nothing
outside it.

Reads every module of the project's packages (tests, migrations, bench and scripts aside) with `ast`, every
import counted (top-level, inside functions, under TYPE_CHECKING), and reports:
- module cycles: files that import each other in a loop;
- package cycles: top-level packages that import each other (one of the two imports then runs upward);
- config importing an app (config should hold settings, Celery and the environment only);
- modules over 800 lines.
Exits 1 when any is found, 0 otherwise; the last line sums it up.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path.cwd()
SKIP = {
    "tests",
    "bench",
    "scripts",
    "migrations",
    ".venv",
    "venv",
    "node_modules",
    "static",
    "templates",
    "data",
}
MAX_LINES = 800


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP or part.startswith(".") for part in rel.parts[:-1]) or len(rel.parts) < 2:
            continue
        if not (ROOT / rel.parts[0] / "__init__.py").exists():
            continue
        name = ".".join(rel.with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            hit = resolve(target)
            if hit and hit != name:
                out.add(hit)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def main() -> int:
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    problems = 0
    module_cycles = cycles(graph)
    for component in module_cycles:
        ties = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component]
        print(f"module cycle: {', '.join(component)}\n  " + "\n  ".join(ties))
    packages: dict[str, set[str]] = defaultdict(set)
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for a, targets in graph.items():
        for b in targets:
            pa, pb = a.split(".")[0], b.split(".")[0]
            if pa != pb:
                packages[pa].add(pb)
                edges[pa, pb].append(f"{a} -> {b}")
    package_cycles = cycles(packages)
    for component in package_cycles:
        print(f"package cycle: {', '.join(component)}")
        for a in component:
            for b in sorted(packages[a]):
                if b in component:
                    print(
                        f"  {a} -> {b}: "
                        + "; ".join(sorted(edges[a, b])[:4])
                        + (" ..." if len(edges[a, b]) > 4 else "")
                    )
    config_imports = sorted(e for (a, b), es in edges.items() if a == "config" for e in es)
    for e in config_imports:
        print(f"config imports an app: {e}")
    big = sorted(
        ((len(p.read_text(encoding="utf-8").splitlines()), n) for n, p in known.items()), reverse=True
    )
    over = [(lines, n) for lines, n in big if lines > MAX_LINES]
    for lines, n in over:
        print(f"module over {MAX_LINES} lines: {n} ({lines})")
    problems = len(module_cycles) + len(package_cycles) + len(config_imports) + len(over)
    print(
        f"{'FAIL' if problems else 'ok'}: {len(known)} modules; {len(module_cycles)} module cycles, "
        f"{len(package_cycles)} package cycles, {len(config_imports)} config->app imports, "
        f"{len(over)} modules over {MAX_LINES} lines (largest: {big[0][1]}, {big[0][0]})"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
