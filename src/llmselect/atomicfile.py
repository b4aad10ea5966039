"""Write a file whole or not at all, even with other writers of the same file at once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file of its own beside `path`, then rename it over `path`.

    A reader sees the old file or the new one, never half of one; each writer (process or
    thread) has a temporary name no other can share, so two writers at once both succeed and
    the last rename wins. A failure leaves `path` as it was and no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never write into another's file; mode 0o666 so the umask decides, as for any file.
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())  # on disk before the rename makes it the file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
