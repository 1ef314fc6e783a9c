from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from gan.models import Patch

pytestmark = pytest.mark.django_db


def test_import_patches_prints_a_report(sample_root: Path, media_root: Path) -> None:
    out = io.StringIO()
    call_command(
        "import_patches",
        str(sample_root / "CRC-VAL-HE-7K"),
        "--classes",
        "LYM,NORM",
        "--name",
        "val",
        stdout=out,
        stderr=io.StringIO(),
    )
    text = out.getvalue()
    assert "Dataset 'val'" in text
    assert "LYM   imported      12" in text and "NORM  imported      12" in text
    assert Patch.objects.count() == 24


def test_import_patches_errors_are_command_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="unknown tissue class"):
        call_command("import_patches", str(tmp_path), "--classes", "XYZ", stderr=io.StringIO())
    with pytest.raises(CommandError, match="give a PATH"):
        call_command("import_patches", stderr=io.StringIO())


def test_download_offline_is_a_clear_error(settings, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.ZENODO_RECORD_URL = f"http://127.0.0.1:{port}/api/records/1214456"
    settings.DOWNLOAD_DIR = tmp_path
    with pytest.raises(CommandError, match="no internet access"):
        call_command("import_patches", "--download", stderr=io.StringIO())
