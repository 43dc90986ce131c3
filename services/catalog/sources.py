"""Which files a signed-in user may have the server read: uploads and configured roots only.

A browser or API user names files on the *server*; without a limit they could import (and so
read back) any file the server's OS user can read. Their sources must resolve — symlinks
followed — inside one of the import roots (``WORKBENCH_IMPORT_ROOTS``, comma-separated, since
URLs hold colons; default: the state folder's ``uploads/`` and the catalog's folder). URLs are refused
unless they start with a root given as a URL (``s3://bucket/incoming/``). The local operator
(CLI, notebooks) reads what its OS user may read.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from services.errors import ValidationError
from services.identity.principal import Principal

ROOTS_VARIABLE = "WORKBENCH_IMPORT_ROOTS"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class SourcePolicy:
    """Confines the import sources of signed-in users; stores their uploads."""

    def __init__(self, uploads: Path, roots: list[str]) -> None:
        self.uploads = Path(uploads)
        self.folders = [Path(r).expanduser().resolve() for r in roots if not _URL.match(r)]
        self.urls = [r for r in roots if _URL.match(r) and not r.lower().startswith("file:")]

    @classmethod
    def for_workbench(cls, state_dir: Path, catalog_location: str) -> SourcePolicy:
        uploads = Path(state_dir) / "uploads"
        configured = os.environ.get(ROOTS_VARIABLE)
        if configured:
            roots = [r.strip() for r in configured.split(",") if r.strip()]
        else:
            roots = [str(uploads)] + ([catalog_location] if not _URL.match(catalog_location)
                                      else [])
        return cls(uploads, [str(uploads), *roots])

    def describe(self) -> str:
        return ", ".join([str(f) for f in self.folders] + self.urls)

    def check(self, source: str, principal: Principal) -> str:
        """``source`` as the server will read it, or ValidationError when ``principal`` may not
        have it read (the message names the source, never its content)."""
        if principal.kind != "user":
            return source
        text = str(source).strip()
        if _URL.match(text):
            if any(text.startswith(url) for url in self.urls):
                return text
            raise ValidationError(f"The server does not fetch {text!r} for you: only uploads and "
                                  f"files under {self.describe()} can be imported. Upload the "
                                  "file instead.")
        try:
            resolved = Path(text).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            resolved = None
        if resolved is None or not any(resolved.is_relative_to(f) for f in self.folders):
            raise ValidationError(f"{text!r} is not a file the server may import for you: only "
                                  f"uploads and files under {self.describe()} can be imported. "
                                  "Upload the file instead.")
        if not resolved.is_file():
            raise ValidationError(f"{text!r} is not a file.")
        return str(resolved)

    def store_upload(self, filename: str, data: bytes) -> Path:
        """Keep an uploaded file under ``uploads/`` with a name that cannot leave it."""
        self.uploads.mkdir(parents=True, exist_ok=True)
        path = self.uploads / safe_upload_name(filename)
        path.write_bytes(data)
        return path

    def discard_upload(self, source: str) -> None:
        """Remove ``source`` if it is an upload (after its import)."""
        try:
            path = Path(source).resolve()
        except OSError:
            return
        if path.is_relative_to(self.uploads.resolve()):
            path.unlink(missing_ok=True)


def safe_upload_name(filename: str) -> str:
    """A file name for an upload that cannot leave the uploads folder (``../`` and all)."""
    base = Path(str(filename or "").replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".") or "upload.csv"
    return f"{secrets.token_hex(4)}-{base}"
