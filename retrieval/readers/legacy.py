"""Old binary Word (.doc) and WPS (.wps) files → DOCX through LibreOffice headless, then `read_docx`.

Each conversion runs in its own temporary LibreOffice profile (`-env:UserInstallation`), so it neither
waits on nor disturbs a LibreOffice the user has open, and is killed after `TIMEOUT_S`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from retrieval.errors import CorpusError

TIMEOUT_S = 120
INSTALL_HINT = "install LibreOffice (Debian/Ubuntu: apt install libreoffice-writer-nogui)"


def soffice() -> str | None:
    """The LibreOffice program on PATH (REPORTQA_SOFFICE overrides), or None."""
    configured = os.environ.get("REPORTQA_SOFFICE", "").strip()
    if configured:
        return configured if shutil.which(configured) else None
    return shutil.which("soffice") or shutil.which("libreoffice")


def read_legacy(path: Path) -> str:
    """The text of a .doc/.wps file, converted to DOCX by LibreOffice."""
    from retrieval.readers.docx import read_docx

    name = str(path)
    program = soffice()
    if program is None:
        raise CorpusError(f"{name}: reading {path.suffix.lower()} files needs LibreOffice: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="reportqa-lo-") as tmp:
        tmp_dir = Path(tmp)
        src = tmp_dir / f"in{path.suffix.lower()}"
        shutil.copyfile(path, src)  # an ASCII name: LibreOffice's output name follows the input's
        out_dir = tmp_dir / "out"
        cmd = [
            program, "--headless", "--norestore", "--nolockcheck",
            f"-env:UserInstallation={(tmp_dir / 'profile').as_uri()}",
            "--convert-to", "docx:MS Word 2007 XML", "--outdir", str(out_dir), str(src),
        ]
        try:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                env={**os.environ, "HOME": str(tmp_dir)},
            )
        except OSError as exc:
            raise CorpusError(f"{name}: cannot start LibreOffice ({exc.strerror or exc}): {INSTALL_HINT}") from None
        try:
            _, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise CorpusError(f"{name}: LibreOffice did not convert the file within {TIMEOUT_S} s") from None
        converted = out_dir / "in.docx"
        if proc.returncode != 0 or not converted.exists():
            detail = " ".join(err.decode("utf-8", "replace").split())[:160]
            raise CorpusError(
                f"{name}: LibreOffice could not read this {path.suffix.lower()} file (damaged, or not a "
                f"Word/WPS document){': ' + detail if detail else ''}"
            )
        try:
            return read_docx(converted)
        except CorpusError as exc:
            raise CorpusError(str(exc).replace(str(converted), name)) from None


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
