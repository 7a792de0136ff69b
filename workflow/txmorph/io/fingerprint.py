"""Content fingerprints of raw inputs, so that a replaced file re-runs its import whatever its
timestamp.

Snakemake re-runs a job when an input is *newer* than its outputs. A spot table, image or side
file replaced by another one with an older timestamp (``cp -p``, ``rsync -a``, ``tar x``) would
leave the old results in place. The import rules therefore take the fingerprint of each raw
input as a ``params:`` value: Snakemake records params with every output and re-runs a job whose
params changed ("Params have changed since last execution" in ``snakemake -n``).

A fingerprint is the SHA-256 of the file's bytes (``sha256:<hex>``), read in a stream. On the
project's 2-core machine (AMD EPYC with SHA extensions) hashlib hashes 1.5-1.8 GB/s with
sha256, 1.7-1.9 with sha1 and 0.5-0.9 with blake2b, so sha256 costs about nothing over sha1; on
CPUs without SHA instructions blake2b would be the faster one. A directory's fingerprint (``sha256-tree:<hex>``) hashes
the sorted relative paths and fingerprints of all files below it.

Hashing is skipped when nothing about the file changed: digests are cached in a small JSON
file (``.snakemake/txmorph/fingerprints.json`` in the working directory) keyed on the absolute
path with the file's size, mtime_ns, ctime_ns, inode and device. ``cp -p``, ``rsync -a`` and
``tar`` restore the modification time but cannot restore the change time (ctime), and a file
moved into place has a new inode, so a replaced file is always hashed again; an unchanged one
costs one ``stat``. Measured on a 4 GiB file (docs/benchmark.md): first fingerprint 6.8 s read
from disk, 4.2 s from the page cache; afterwards 0.1 ms in a new Snakemake process (cache load
and ``stat``). Files changed less than
``RACY_SECONDS`` ago are not cached (a write within the same timestamp tick would not show in
the stat), nor are files that changed while being hashed.

The cache is only an optimisation: it may be deleted at any time, a corrupt or unwritable cache
is ignored, and concurrent writers (several Snakemake processes) at worst lose an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import threading
import time
from pathlib import Path

ALGORITHM = "sha256"
CACHE_FILE = Path(".snakemake/txmorph/fingerprints.json")
CACHE_VERSION = 1
RACY_SECONDS = 2.0
CHUNK = 1 << 20

_lock = threading.Lock()


def hash_file(path: str | os.PathLike) -> str:
    """The hex digest of a file's bytes, read in chunks of ``CHUNK`` bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        The ``ALGORITHM`` hex digest.
    """
    digest = hashlib.new(ALGORITHM)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class FingerprintCache:
    """Digests of files by absolute path, valid while the file's stat key is unchanged.

    Parameters
    ----------
    path : str or os.PathLike or None
        The JSON file the cache is kept in (None: in memory only).
    """

    def __init__(self, path: str | os.PathLike | None = CACHE_FILE):
        self.path = None if path is None else Path(path)
        self.entries: dict[str, dict] = self._load()
        self.dirty = False

    def _load(self) -> dict[str, dict]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if (not isinstance(data, dict) or data.get("version") != CACHE_VERSION
                or data.get("algorithm") != ALGORITHM or not isinstance(data.get("files"), dict)):
            return {}
        return data["files"]

    def file_digest(self, path: str | os.PathLike) -> str:
        """The digest of one file: from the cache if its stat is unchanged, else hashed.

        Parameters
        ----------
        path : str or os.PathLike
            The file.

        Returns
        -------
        str
            Its hex digest.
        """
        name = os.path.abspath(path)
        st = os.stat(name)
        entry = self.entries.get(name)
        if isinstance(entry, dict) and entry.get("key") == _key(st):
            return entry["digest"]
        for _ in range(3):  # re-hash if the file changes while being read
            digest = hash_file(name)
            after = os.stat(name)
            if _key(after) == _key(st):
                break
            st = after
        else:
            return digest  # still changing: use it, but do not cache it
        recent = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_SECONDS * 1e9
        if not recent:
            self.entries[name] = {"key": _key(st), "digest": digest}
            self.dirty = True
        return digest

    def save(self) -> None:
        """Merge the new entries into the cache file (atomically); errors are ignored."""
        if self.path is None or not self.dirty:
            return
        try:
            merged = {**self._load(), **self.entries}
            merged = {name: entry for name, entry in merged.items() if os.path.lexists(name)}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f"{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump({"version": CACHE_VERSION, "algorithm": ALGORITHM,
                               "files": merged}, f, indent=0)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
            self.entries, self.dirty = merged, False
        except OSError:
            pass


def fingerprint(path: str | os.PathLike, cache: FingerprintCache | None = None) -> str:
    """The content fingerprint of a file or of a directory's files.

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a directory (e.g. a SpatialData store).
    cache : FingerprintCache or None
        Digests of unchanged files are taken from it.

    Returns
    -------
    str
        ``sha256:<hex>`` of a file, or ``sha256-tree:<hex>`` of a directory's files.

    Raises
    ------
    OSError
        (``FileNotFoundError``, ``PermissionError``, ...) with the offending path in
        ``filename`` when the input cannot be read.
    """
    cache = cache if cache is not None else FingerprintCache(None)
    with _lock:
        try:
            if not stat.S_ISDIR(os.stat(path).st_mode):
                return f"{ALGORITHM}:{cache.file_digest(path)}"
            tree = hashlib.new(ALGORITHM)
            for relative in _files_below(Path(path)):
                digest = cache.file_digest(Path(path, relative))
                tree.update(f"{relative}\0{digest}\n".encode())
            return f"{ALGORITHM}-tree:{tree.hexdigest()}"
        finally:
            cache.save()


def _files_below(root: Path) -> list[str]:
    """Relative POSIX paths of the files below ``root``, sorted; unreadable folders raise."""

    def fail(error: OSError) -> None:
        raise error

    found = []
    for folder, dirs, files in os.walk(root, onerror=fail):
        dirs.sort()
        found += [Path(folder, name).relative_to(root).as_posix() for name in files]
    return sorted(found)


_caches: dict[str, FingerprintCache] = {}


def cached_fingerprint(path: str | os.PathLike, cache_file: str | os.PathLike = CACHE_FILE) -> str:
    """``fingerprint(path)`` with the process-wide cache kept in ``cache_file``.

    Parameters
    ----------
    path : str or os.PathLike
        A file or directory.
    cache_file : str or os.PathLike
        The cache's JSON file.

    Returns
    -------
    str
        As ``fingerprint``.
    """
    with _lock:
        key = os.path.abspath(cache_file)
        if key not in _caches:
            _caches[key] = FingerprintCache(cache_file)
        cache = _caches[key]
    return fingerprint(path, cache)
