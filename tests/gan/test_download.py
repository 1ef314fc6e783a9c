"""The Zenodo download against a local HTTP server that speaks the record API and Range requests."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gan import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Zenodo(BaseHTTPRequestHandler):
    payload = PAYLOAD
    checksum = "md5:" + hashlib.md5(PAYLOAD).hexdigest()  # noqa: S324  (Zenodo's own checksum type)
    ranges: list[str | None] = []
    fail_after: int | None = None

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/api/records/1214456":
            body = json.dumps(
                {
                    "files": [
                        {
                            "key": "NCT-CRC-HE-100K.zip",
                            "size": len(self.payload),
                            "checksum": self.checksum,
                            "links": {"self": f"{host}/files/NCT-CRC-HE-100K.zip"},
                        }
                    ]
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        start = int(header.removeprefix("bytes=").rstrip("-")) if header else 0
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = type(self).fail_after
        self.wfile.write(body if limit is None else body[:limit])


@pytest.fixture
def zenodo() -> Iterator[str]:
    _Zenodo.ranges = []
    _Zenodo.fail_after = None
    _Zenodo.checksum = "md5:" + hashlib.md5(PAYLOAD).hexdigest()  # noqa: S324
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Zenodo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/records/1214456"
    server.shutdown()


def test_download_fetches_and_verifies(zenodo: str, tmp_path: Path) -> None:
    seen: list[int] = []
    path = download.download(
        record_url=zenodo, dest_dir=tmp_path, progress=lambda done, total: seen.append(done)
    )
    assert path == tmp_path / "NCT-CRC-HE-100K.zip"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == len(PAYLOAD)
    assert not (tmp_path / "NCT-CRC-HE-100K.zip.part").exists()


def test_download_resumes_a_partial_file(zenodo: str, tmp_path: Path) -> None:
    (tmp_path / "NCT-CRC-HE-100K.zip.part").write_bytes(PAYLOAD[:300_000])
    path = download.download(record_url=zenodo, dest_dir=tmp_path)
    assert _Zenodo.ranges == ["bytes=300000-"]
    assert path.read_bytes() == PAYLOAD


def test_interrupted_download_can_be_resumed(zenodo: str, tmp_path: Path) -> None:
    _Zenodo.fail_after = 200_000
    with pytest.raises(download.DownloadError):
        download.download(record_url=zenodo, dest_dir=tmp_path)
    assert (tmp_path / "NCT-CRC-HE-100K.zip.part").stat().st_size == 200_000
    _Zenodo.fail_after = None
    path = download.download(record_url=zenodo, dest_dir=tmp_path)
    assert _Zenodo.ranges[-1] == "bytes=200000-"
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_the_file(zenodo: str, tmp_path: Path) -> None:
    _Zenodo.checksum = "md5:" + "0" * 32
    with pytest.raises(download.DownloadError, match="checksum mismatch"):
        download.download(record_url=zenodo, dest_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_complete_verified_file_is_not_fetched_again(zenodo: str, tmp_path: Path) -> None:
    (tmp_path / "NCT-CRC-HE-100K.zip").write_bytes(PAYLOAD)
    download.download(record_url=zenodo, dest_dir=tmp_path)
    assert _Zenodo.ranges == []


def test_unknown_file_names_what_the_record_holds(zenodo: str, tmp_path: Path) -> None:
    with pytest.raises(download.DownloadError, match="holds: NCT-CRC-HE-100K.zip"):
        download.download(record_url=zenodo, dest_dir=tmp_path, filename="other.zip")


def test_offline_says_so_and_how_to_import_by_hand(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(download.DownloadError, match="no internet access.*import_patches"):
        download.download(record_url=f"http://127.0.0.1:{port}/api/records/1214456", dest_dir=tmp_path)
