"""Where an image data set's files live: a folder (searched recursively) or a zip archive, as one list of entries.

    source = open_source(path)             # a directory or a .zip file
    source.entries                         # [Entry(name, size, mtime)], image-like names only, sorted by name
    source.read(name) -> bytes             # the file's bytes (thread- and fork-safe: a zip is reopened per process)
    source.content_key()                   # sha256 of every (name, size, mtime): the key of every cache built on it

The entries are every file whose extension is an image format (IMAGE_EXTENSIONS, wider than what PIL decodes, so
that a .heic file is listed by the data check as "unsupported format" instead of silently ignored). The order is the
sorted relative name, so an index into `entries` means the same file on every machine.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

__all__ = ["Entry", "ImageSource", "open_source", "IMAGE_EXTENSIONS", "SourceSpec"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm",
                    ".heic", ".heif", ".avif", ".jxl")


@dataclass(frozen=True)
class Entry:
    name: str                                       # path relative to the root (posix separators)
    size: int                                       # bytes
    mtime: float                                    # seconds (a zip member's date_time)


@dataclass(frozen=True)
class SourceSpec:
    """What a worker process needs to reopen a source: picklable, no open handles."""
    kind: str                                       # "folder" | "zip"
    path: str


_ZIPS: dict[str, zipfile.ZipFile] = {}              # one open handle per archive per process


def _zip(path: str) -> zipfile.ZipFile:
    key = f"{os.getpid()}:{path}"
    if key not in _ZIPS:
        _ZIPS[key] = zipfile.ZipFile(path)
    return _ZIPS[key]


def read_entry(spec: SourceSpec, name: str) -> bytes:
    """The bytes of one entry (the worker-side read)."""
    if spec.kind == "zip":
        return _zip(spec.path).read(name)
    with open(os.path.join(spec.path, name), "rb") as f:
        return f.read()


class ImageSource:
    def __init__(self, spec: SourceSpec, entries: list[Entry]):
        self.spec = spec
        self.entries = entries

    @property
    def path(self) -> Path:
        return Path(self.spec.path)

    def __len__(self) -> int:
        return len(self.entries)

    def read(self, name: str) -> bytes:
        return read_entry(self.spec, name)

    def content_key(self) -> str:
        """sha256 over every entry's (name, size, mtime) and the source's path: changes when any file does."""
        h = hashlib.sha256(f"{self.spec.kind}:{os.path.abspath(self.spec.path)}\n".encode())
        for e in self.entries:
            h.update(f"{e.name}\t{e.size}\t{e.mtime:.3f}\n".encode())
        return h.hexdigest()


def _folder_entries(root: Path) -> list[Entry]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if os.path.splitext(fn)[1].lower() in IMAGE_EXTENSIONS and not fn.startswith("."):
                full = os.path.join(dirpath, fn)
                st = os.stat(full)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                out.append(Entry(rel, st.st_size, st.st_mtime))
    out.sort(key=lambda e: e.name)
    return out


def _zip_entries(path: Path) -> list[Entry]:
    import time
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path} is not a readable zip archive ({e})") from None
    out = []
    for info in infos:
        base = info.filename.rsplit("/", 1)[-1]
        if info.is_dir() or base.startswith(".") or "__MACOSX/" in info.filename:
            continue
        if os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS:
            mtime = time.mktime(info.date_time + (0, 0, -1))
            out.append(Entry(info.filename, info.file_size, mtime))
    out.sort(key=lambda e: e.name)
    return out


def open_source(path: str | os.PathLike[str], *, what: str = "image folder", hint: str = "") -> ImageSource:
    """A folder or a .zip of images; DataError (one line, with `hint` saying what belongs there) when missing/empty."""
    p = Path(path).expanduser()
    tail = f"; {hint}" if hint else "; pass --set dataset.root=DIR_OR_ZIP"
    if p.is_dir():
        spec, entries = SourceSpec("folder", str(p)), _folder_entries(p)
    elif p.is_file() and p.suffix.lower() == ".zip":
        spec, entries = SourceSpec("zip", str(p)), _zip_entries(p)
    elif p.with_suffix(".zip").is_file() and not p.suffix:
        spec, entries = SourceSpec("zip", str(p.with_suffix(".zip"))), _zip_entries(p.with_suffix(".zip"))
    else:
        raise DataError(f"{what} {p} does not exist{tail}")
    if not entries:
        raise DataError(f"{what} {spec.path} has no png/jpg/jpeg/webp images{tail}")
    return ImageSource(spec, entries)
