"""One safe way to walk a corpus root and read its files: every name, link and byte in it is untrusted.

- Nothing outside the root is opened: a symlink is followed only when its target, fully resolved, lies inside the
  root (else `unsafe_path`); a symlink to a folder is never descended (a target inside the root is walked where
  it lies, so nothing is read twice and no loop is possible).
- Nothing but regular files is opened: a FIFO would block the scan forever and a device can be endless, so
  FIFOs, sockets and devices are reported (`not_a_file`); broken and looping symlinks too (`broken_symlink`).
- Names are kept as the OS gives them (undecodable bytes as surrogate escapes) so the file can still be opened;
  the readers decide whether a name can become an id (`base.check_name`).
- Every read goes through `read` or `hash`: the file opened must be the one walked (same device and inode, so a
  symlink swapped after the walk cannot redirect the read) and must not change while it is read (`file_changed`).
- Hidden entries (a name starting with '.') are skipped: .DS_Store, .git, the demo's .emopipe-synthetic.json.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pathlib
import stat
import zipfile
from dataclasses import dataclass, field

from emopipe.sources.base import InvalidInput

# Split, label and annotation files are small (DFEW's biggest split file is under 1 MB); anything far larger is
# not one, and reading it whole would cost the memory of the whole scan.
MAX_TEXT_BYTES = 64 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """A regular file or a real folder found under the root.

    Args:
        rel: POSIX path relative to the root, as the OS spells it (may hold surrogate escapes).
        path: root / rel, for opening.
        is_dir: a folder (or a symlink to one inside the root, `via_link`: listed, never descended).
        size: bytes, at walk time.
        ident: (device, inode) of the file itself (of the target, for a symlink).
        via_link: reached through a symlink whose target stays inside the root.
    """

    rel: str
    path: pathlib.Path
    is_dir: bool
    size: int
    ident: tuple[int, int]
    via_link: bool = False

    @property
    def name(self) -> str:
        return self.rel.rpartition("/")[2]

    @property
    def parent(self) -> str:
        """The folder's rel ('' at the root)."""
        return self.rel.rpartition("/")[0]

    @property
    def stem(self) -> str:
        """The name without its extension (pathlib's `stem`)."""
        name = self.name
        dot = _extension_dot(name)
        return name[:dot] if dot else name

    @property
    def suffix(self) -> str:
        """Lower-cased extension with its dot, '' without one (pathlib's `suffix`, without building a path: a scan
        asks this of every file several times)."""
        name = self.name
        dot = _extension_dot(name)
        return name[dot:].lower() if dot else ""


def _extension_dot(name: str) -> int:
    """Where a file name's extension starts (its last dot), 0 when it has none: as pathlib, a leading dot (a hidden
    file's) and a trailing one start no extension."""
    dot = name.rfind(".")
    return dot if 0 < dot < len(name) - 1 else 0


@dataclass
class Tree:
    """What `walk` found: regular files and folders in rel order, and the entries that can never be read."""

    root: pathlib.Path
    files: list[Entry] = field(default_factory=list)
    dirs: list[Entry] = field(default_factory=list)
    problems: list[tuple[str, InvalidInput]] = field(default_factory=list)
    _by_rel: dict[str, Entry] | None = field(default=None, init=False, repr=False)

    def under(self, prefix: str) -> list[Entry]:
        """Files whose rel starts with `prefix/` (every file for '')."""
        return [e for e in self.files if not prefix or e.rel.startswith(prefix.rstrip("/") + "/")]

    def get(self, rel: str) -> Entry | None:
        """The file at `rel`, if the walk found one there."""
        if self._by_rel is None:
            self._by_rel = {e.rel: e for e in self.files}
        return self._by_rel.get(rel)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _inside(real_root: str, target: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip("/") + "/")


HIDDEN_MEDIA = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".wav", ".mp3", ".flac", ".m4a"}


def walk(root: pathlib.Path) -> Tree:
    """Every entry under `root` without following anything out of it, never raising for what it finds."""
    root = pathlib.Path(root)
    real_root = os.path.realpath(root)
    tree = Tree(root)
    stack = [""]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(root / folder if folder else root) as it:
                names = sorted(item.name for item in it)
        except OSError as err:
            tree.problems.append((folder or ".", InvalidInput("unreadable_file", f"cannot list the folder: {err}")))
            continue
        for name in names:
            if name.startswith("."):  # hidden: OS and tool metadata (.DS_Store, .git), never read
                if pathlib.PurePath(name).suffix.lower() in HIDDEN_MEDIA:
                    rel = f"{folder}/{name}" if folder else name  # said, not silently dropped: it looks like media
                    detail = "a hidden file named like media (macOS keeps ._ metadata so); never read"
                    tree.problems.append((rel, InvalidInput("hidden_file", detail)))
                continue
            rel = f"{folder}/{name}" if folder else name
            path = root / rel
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                tree.problems.append((rel, InvalidInput("file_changed", "vanished during the scan")))
                continue
            except OSError as err:
                tree.problems.append((rel, InvalidInput("unreadable_file", str(err))))
                continue
            via_link = stat.S_ISLNK(st.st_mode)
            if via_link:
                try:
                    target = os.path.realpath(path, strict=True)
                except (OSError, RuntimeError) as err:
                    what = {errno.ENOENT: "points to nothing", errno.ELOOP: "is a symlink loop"}.get(
                        getattr(err, "errno", errno.ELOOP), f"cannot be resolved: {err}"
                    )
                    tree.problems.append((rel, InvalidInput("broken_symlink", f"symlink to {_link(path)} {what}")))
                    continue
                if not _inside(real_root, target):
                    tree.problems.append(
                        (rel, InvalidInput("unsafe_path", f"symlink to {_link(path)} leaves the root"))
                    )
                    continue
                try:
                    st = os.stat(target)
                except OSError as err:
                    tree.problems.append((rel, InvalidInput("unreadable_file", str(err))))
                    continue
                if stat.S_ISDIR(st.st_mode):  # listed (a reader may expect a file there), never descended:
                    tree.dirs.append(Entry(rel, path, True, 0, (st.st_dev, st.st_ino), True))  # walked where it lies
                    continue
            if stat.S_ISDIR(st.st_mode):
                tree.dirs.append(Entry(rel, path, True, 0, (st.st_dev, st.st_ino)))
                stack.append(rel)
            elif stat.S_ISREG(st.st_mode):
                tree.files.append(Entry(rel, path, False, st.st_size, (st.st_dev, st.st_ino), via_link))
            else:
                tree.problems.append((rel, InvalidInput("not_a_file", f"{_kind(st.st_mode)}; never opened")))
    tree.files.sort(key=lambda e: e.rel)
    tree.dirs.sort(key=lambda e: e.rel)
    return tree


def _link(path: pathlib.Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _open(entry: Entry) -> tuple[int, os.stat_result]:
    """A read-only descriptor on the very file the walk found; raises InvalidInput otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(entry.path, flags)
    except FileNotFoundError as err:
        raise InvalidInput("file_changed", "vanished during the scan") from err
    except OSError as err:
        raise InvalidInput("unreadable_file", str(err)) from err
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != entry.ident:
        os.close(fd)
        raise InvalidInput("file_changed", "replaced by another file during the scan")
    return fd, st


def _chunks(entry: Entry, limit: int | None):
    """Yield the file's bytes in chunks; raise InvalidInput if it is over `limit` or changes while read."""
    fd, before = _open(entry)
    try:
        if limit is not None and before.st_size > limit:
            raise InvalidInput(
                "unreadable_file", f"{before.st_size} bytes, more than a file of its kind may have ({limit})"
            )
        n = 0
        while block := os.read(fd, _CHUNK):
            n += len(block)
            if limit is not None and n > limit:
                raise InvalidInput("file_changed", "grew while being read")
            yield block
        after = os.fstat(fd)
    except OSError as err:
        raise InvalidInput("unreadable_file", str(err)) from err
    finally:
        os.close(fd)
    if n != after.st_size or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InvalidInput("file_changed", "changed while being read")


def read(entry: Entry, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The whole file (an annotation, split or label file), at most `limit` bytes."""
    return b"".join(_chunks(entry, limit))


def sha256(entry: Entry) -> tuple[str, int]:
    """(hex SHA-256, bytes) of a media file, read in 1 MiB chunks, or reused while the file's path, size and
    modification time match an earlier run's record (emopipe.sources.hashcache)."""
    from emopipe.sources import hashcache

    try:
        st = os.stat(entry.path)
    except FileNotFoundError as err:
        raise InvalidInput("file_changed", "vanished during the scan") from err
    except OSError as err:
        raise InvalidInput("unreadable_file", str(err)) from err
    if (known := hashcache.lookup(entry.path, st)) is not None:
        return known, st.st_size
    h, n = hashlib.sha256(), 0
    for block in _chunks(entry, None):
        h.update(block)
        n += len(block)
    hashcache.record(entry.path, st, h.hexdigest())  # _chunks checked that the file did not change meanwhile
    return h.hexdigest(), n


def check_zip(data: bytes, limit: int = 2 * MAX_TEXT_BYTES) -> None:
    """Refuse a spreadsheet (a zip) that is not one or would expand past `limit` bytes (a zip bomb)."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise InvalidInput("unreadable_annotation", f"not a spreadsheet (zip): {err}") from err
    if total > limit:
        raise InvalidInput("unreadable_annotation", f"expands to {total} bytes, more than {limit}")
