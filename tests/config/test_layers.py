"""Layers that import-linter cannot see: function-level imports run only when called."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
