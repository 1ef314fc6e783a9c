"""Layers that import-linter cannot see: function-level imports run only when called."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.servers import PATIENCE_S

REPO = Path(__file__).resolve().parents[2]


def test_web_processes_do_not_import_torch(tmp_path: Path) -> None:
    """A web process (the WSGI application with every view and URL loaded, as gunicorn's workers boot)
    has no PyTorch in memory: about 450 MB less per worker. Training, sampling and FID import it inside
    the job bodies that run on workers."""
    code = (
        "import json, sys; from config.wsgi import application; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'torchvision', "
        "'torch_fidelity'})))"
    )
    env = dict(os.environ) | {"DEBUG": "1", "HISTOTURING_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=PATIENCE_S
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


APPS = ("config", "core", "gan", "turing", "evaluation", "portal", "analysis", "neural")
TORCH = ("torch", "torchvision", "torch_fidelity")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _app_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for app in APPS
        for path in (REPO / app).rglob("*.py")
        if "migrations" not in path.parts
    }


def _top_level_imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:  # the module's own statements: not functions, not `if TYPE_CHECKING:` blocks
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_function_level_imports_are_there_only_to_keep_pytorch_out_of_web_processes() -> None:
    """An import inside a function hides a dependency; the one reason for it here is PyTorch (and the
    modules that import it at load), which web processes must not load. Django's AppConfig.ready()
    is the other place its rules require one."""
    modules = _app_modules()
    trees = {name: ast.parse(path.read_text()) for name, path in modules.items()}
    memo: dict[str, bool] = {}

    def loads_torch(name: str) -> bool:
        if name.split(".")[0] in TORCH:
            return True
        if name not in trees:
            return False
        if name not in memo:
            memo[name] = False  # cycles end here
            memo[name] = any(loads_torch(imported) for imported in _top_level_imports(trees[name]))
        return memo[name]

    offenders = []
    for name, tree in trees.items():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) or function.name == "ready":
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    imported = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    imported = [node.module]
                else:
                    continue
                if not any(loads_torch(module) for module in imported):
                    offenders.append(f"{modules[name].relative_to(REPO)}:{node.lineno} imports {imported[0]}")
    assert not offenders, "function-level imports that do not load PyTorch:\n" + "\n".join(offenders)
