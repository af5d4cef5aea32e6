"""Real file servers on localhost for the remote-input tests: XRootD (``xrootd`` of Debian's xrootd-server) and HTTP.

:func:`xrootd_server` starts the real XRootD daemon exporting one folder (as root it must drop its
privileges: ``-R nobody``, so the folder is made world-readable); :func:`http_server` serves a
folder over HTTP with byte-range requests, as uproot reads remote files in ranges.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"xrootd exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"xrootd did not listen on port {port} within {timeout} s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def xrootd_server(files: Path) -> Iterator[tuple[str, Path]]:
    """Serve a copy of the folder ``files`` with a real XRootD server on a free localhost port.

    Yields ``root://localhost:PORT/`` and the served folder (its files are at ``URL + /path``).
    The copy lives in a new folder under the system's temporary folder that the server's user
    (``nobody`` when run as root) can reach; it is removed afterwards.
    """
    binary = shutil.which("xrootd")
    if binary is None:
        raise FileNotFoundError("xrootd")
    work = Path(tempfile.mkdtemp(prefix="hepscale-xrootd-"))
    try:
        export = work / "export"
        shutil.copytree(files, export)
        admin = work / "admin"
        admin.mkdir()
        work.chmod(0o755)
        admin.chmod(0o777)
        for path in (export, *export.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        with _xrootd(binary, export, work) as url:
            yield url, export
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _xrootd(binary: str, export: Path, work: Path) -> Iterator[str]:
    admin = work / "admin"
    cfg = work / "xrootd.cfg"
    cfg.write_text(f"all.export {export} r/o\nall.adminpath {admin}\nall.pidpath {admin}\n")
    port = free_port()
    log = admin / "xrootd.log"
    cmd = [binary, "-p", str(port), "-c", str(cfg), "-l", str(log)]
    if os.geteuid() == 0:
        cmd[1:1] = ["-R", "nobody"]
    with open(admin / "xrootd.out", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=admin)
    try:
        _wait_for_port(port, proc, admin / "xrootd.out")
        yield f"root://localhost:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` support (206 Partial Content)."""

    def log_message(self, *args: object) -> None:
        pass

    def send_head(self):  # noqa: ANN201  (the base class's protocol)
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if spec is None or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, _, last = spec.removeprefix("bytes=").partition("-")
        start = int(first) if first else max(size - int(last), 0)
        stop = min(int(last) if first and last else size - 1, size - 1)
        handle = open(path, "rb")  # noqa: SIM115  (returned to the base class, which closes it)
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.send_header("Content-Length", str(stop - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Limited(handle, stop - start + 1)


class _Limited:
    """A file object that reads at most ``n`` bytes (the requested range)."""

    def __init__(self, handle, n: int) -> None:
        self.handle, self.left = handle, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()


@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free localhost port; yields ``http://localhost:PORT/``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
