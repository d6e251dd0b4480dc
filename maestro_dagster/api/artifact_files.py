"""The artifact download rule (``GET /api/executions/{id}/artifacts/{artifact_id}/content``), written here once.

A row of ``artifacts`` is served only when it belongs to the execution asked for and either

- its ``file_path`` is absolute and, fully resolved (symlinks followed, ``..`` collapsed), lies inside one of
  ``settings.artifact_roots`` (the artifacts directory plus ``MAESTRO_ARTIFACT_ROOTS``) and is a regular file; or
- it has no ``file_path`` and holds inline ``content``.

The answer is always an attachment (``Content-Disposition: attachment`` with a name of safe characters only),
``X-Content-Type-Options: nosniff`` and a sandboxing Content-Security-Policy; its type is the row's
``content_type`` only when that is one of ``SAFE_TYPES`` (never HTML or SVG), else ``application/octet-stream``.
Refusals are ``NotFoundError`` (no such row for that execution, or the file is gone) or ``ForbiddenError`` (the
file is outside the roots), each naming the fix. The file is opened (``open_file``) before the answer starts and
the open handle is streamed: a file removed after the check is a 404 then, and one removed while it is sent is
still sent whole (POSIX keeps an open file's data).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from maestro_dagster.db.models import Artifact
from maestro_dagster.errors import ForbiddenError, MaestroError, NotFoundError

SAFE_TYPES = frozenset({"text/plain", "application/json", "text/csv", "image/png", "image/jpeg"})
OCTET_STREAM = "application/octet-stream"
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}
ROOTS_SETTING = "MAESTRO_ARTIFACT_ROOTS"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Download:
    """What to send: a file (``path``, resolved) or inline ``content``, under ``filename`` as ``media_type``."""

    filename: str
    media_type: str
    path: Path | None = None
    content: str | None = None


def media_type_of(content_type: str | None) -> str:
    """The row's content type when it is a plain safe one (parameters dropped), else ``application/octet-stream``."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else OCTET_STREAM


def safe_filename(name: str | None) -> str:
    """``name``'s last path part with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (no leading
    dot, at most 200 characters); ``artifact`` when nothing is left."""
    last = re.split(r"[\\/]", name or "")[-1]
    cleaned = _UNSAFE.sub("_", last).lstrip(".")[:200].strip("_")
    return cleaned or "artifact"


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def resolved_file(row: Artifact, roots: Sequence[Path]) -> Path:
    """The file of ``row``, resolved, when the rule allows it; else ``ForbiddenError`` or ``NotFoundError``."""
    assert row.file_path is not None
    shown = {"artifact_id": row.id, "execution_id": row.execution_id, "artifact_roots": [str(r) for r in roots]}
    path = Path(row.file_path)
    if not path.is_absolute():
        raise ForbiddenError(
            f"artifact {row.id} of execution {row.execution_id} has a relative file path, which is never served: "
            "download it where the run wrote it, or have its node report an absolute path inside the artifacts "
            f"directory (or a directory of {ROOTS_SETTING}).",
            details=shown,
        )
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        real = None
    if real is None or not _inside(real, roots):
        raise ForbiddenError(
            f"artifact {row.id} of execution {row.execution_id} is a file outside the artifact roots (the artifacts "
            f"directory and {ROOTS_SETTING}), so the API does not serve it: copy it into the artifacts directory, or "
            f"have an operator add its directory to {ROOTS_SETTING} where the API runs.",
            details=shown,
        )
    if not real.is_file():
        raise NotFoundError(_gone(row.id, row.execution_id).message, details=shown)
    return real


def download_of(row: Artifact, roots: Sequence[Path]) -> Download:
    """What ``row``'s download sends, or the error refusing it."""
    name = safe_filename(row.name or row.file_path)
    media_type = media_type_of(row.content_type)
    if row.file_path:
        return Download(name, media_type, path=resolved_file(row, roots))
    if row.content is not None:
        return Download(name, media_type, content=row.content)
    raise NotFoundError(
        f"artifact {row.id} of execution {row.execution_id} has neither a file nor inline content to download"
        f"{f' (it names {row.uri!r}: open that instead)' if row.uri else ''}.",
        details={"artifact_id": row.id, "execution_id": row.execution_id},
    )


def _gone(artifact_id: str, execution_id: str) -> NotFoundError:
    return NotFoundError(
        f"the file of artifact {artifact_id} of execution {execution_id} is gone (or is not a regular file): it "
        "may have been removed by retention or by hand; run the node again to produce it.",
        details={"artifact_id": artifact_id, "execution_id": execution_id},
    )


def open_file(download: Download, artifact_id: str, execution_id: str) -> tuple[BinaryIO, int]:
    """``download``'s file opened for reading, with its size, or ``NotFoundError`` when it vanished (or stopped
    being a regular file) since the rule checked it."""
    assert download.path is not None
    try:
        handle = open(download.path, "rb")  # noqa: SIM115 - closed by chunks() once sent
    except OSError:
        raise _gone(artifact_id, execution_id) from None
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        handle.close()
        raise _gone(artifact_id, execution_id)
    return handle, info.st_size


def chunks(handle: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """The open file's bytes in pieces, the handle closed at the end (or when the stream is abandoned)."""
    with handle:
        while piece := handle.read(size):
            yield piece


def disposition(filename: str) -> dict[str, str]:
    """The download headers of an attachment named ``filename`` (already ``safe_filename``)."""
    return {**DOWNLOAD_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}


def downloadable(row: Artifact, roots: Sequence[Path]) -> bool:
    """Whether ``download_of(row)`` would serve it."""
    try:
        download_of(row, roots)
    except MaestroError:
        return False
    return True


def not_this_executions(artifact_id: str, execution_id: str) -> NotFoundError:
    return NotFoundError(
        f"execution {execution_id} has no artifact {artifact_id}: list its artifacts with "
        f"GET /api/executions/{execution_id}/artifacts and use one of their ids.",
        details={"artifact_id": artifact_id, "execution_id": execution_id},
    )
