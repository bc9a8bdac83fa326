"""The output folder: checked before any training, written atomically, never silently overwritten."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# What the comparison writes (and what --overwrite replaces; nothing else in the folder is touched).
RESULTS = "results.json"
REPORT = "report.html"
FIGURE_PREFIX = "loss_curves"


class OutputError(ValueError):
    """``--out`` cannot be used (reported as an argument error, before any training)."""


def check(out: Path, *, overwrite: bool) -> None:
    """Refuse a path that is a file, a non-empty folder (unless ``overwrite``), or a folder that cannot be
    created or written. Creates nothing."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder")
    if out.is_dir():
        if any(out.iterdir()) and not overwrite:
            raise OutputError(
                f"--out {out} is not empty; pass --overwrite to replace its results, or choose another folder"
            )
        target = out
    else:
        target = out.parent
        while not target.exists():  # the closest existing ancestor must be a writable folder
            target = target.parent
        if not target.is_dir():
            raise OutputError(f"--out {out}: {target} is a file, not a folder")
    if not os.access(target, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: {target} is not writable")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace`` (a
    reader, or a run interrupted while writing, sees the old file or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
