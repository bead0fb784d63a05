"""Copy a build output that upstream code wrote, taking only what is plainly a file.

The tree is untrusted: a link could pull the publisher's files (`/proc/self/environ`, `~/.ssh`)
into the package, a FIFO could block the copy, a sparse file could fill the disk. Every entry is
judged by `lstat` before it is opened, and opened with `O_NOFOLLOW`, so nothing is followed.
The copy lands in a temporary sibling and is renamed into place only when all of it passed.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import unicodedata
from pathlib import Path

from sdkmirror.core.errors import MirrorError

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
FILE_MODE = 0o644  # normalised: the package's bytes never depend on the builder's umask
DIR_MODE = 0o755
FIXED_MTIME = 499162500  # 1985-10-26T08:15:00Z, the date npm itself stamps on packed files
_CHUNK = 1 << 20
MAX_DEPTH = 32  # directories below the top of a build output
MAX_ENTRIES = 50_000


class UnsafeFile(MirrorError):
    """The build output holds something other than plain files and directories."""

    exit_code = 7


def name_problem(name: str) -> str | None:
    """Why one path component may not ship, or None."""
    if name in ("", ".", ".."):
        return "is a relative path component"
    if "\\" in name or "/" in name:
        return "has a slash or backslash in its name"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "has a control character in its name"
    if ".." in name:
        return "has '..' in its name"
    return None


def entry_problem(st: os.stat_result) -> str | None:
    """Why an entry of this `lstat` may not ship, or None for a plain file or directory."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
        return "has the setuid, setgid or sticky bit"
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        kind = (
            "FIFO"
            if stat.S_ISFIFO(mode)
            else "socket"
            if stat.S_ISSOCK(mode)
            else "device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "special file"
        )
        return f"is a {kind}"
    if st.st_nlink > 1:
        return f"is a hard link ({st.st_nlink} names for one file)"
    return None


def copy_tree(src: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Copy `src` to the new directory `dest`; returns the bytes copied.

    Raises `UnsafeFile` naming the first entry that is not plainly a file, or the file that
    takes the total over `max_bytes` (judged by its size, before a byte is read); `dest` is
    then not created.
    """
    if dest.exists():
        raise UnsafeFile(f"{dest} already exists; copy into a fresh directory")
    top = os.lstat(src)
    if not stat.S_ISDIR(top.st_mode):
        raise UnsafeFile(f"{src} {entry_problem(top) or 'is not a directory'}; build it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        total = _copy_dir(src, tmp, src, max_bytes, 0)
        _stamp(tmp, DIR_MODE)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return total


def _refuse(root: Path, path: Path, problem: str) -> UnsafeFile:
    rel = path.relative_to(root.parent).as_posix()
    return UnsafeFile(
        f"{rel!r} in the build output {problem}; only regular files and directories are "
        "packaged, so nothing was packed: fix the upstream build (or do not publish this ref)"
    )


def _copy_dir(src: Path, dest: Path, root: Path, max_bytes: int, total: int) -> int:
    """Copy the tree with an explicit stack (no recursion), bounded in depth and entries, so a
    hostile build's deep or huge tree is one clear refusal, never a RecursionError."""
    stack: list[tuple[Path, Path, int]] = [(src, dest, 0)]
    done: list[Path] = []  # directories, stamped after their contents (children first)
    entries = 0
    while stack:
        current, out, depth = stack.pop()
        done.append(out)
        for name in sorted(os.listdir(current)):
            path = current / name
            entries += 1
            if entries > MAX_ENTRIES:
                raise _refuse(root, path, f"takes the tree over {MAX_ENTRIES} entries")
            problem = name_problem(name)
            st = os.lstat(path)
            problem = problem or entry_problem(st)
            if problem:
                raise _refuse(root, path, problem)
            target = out / name
            if stat.S_ISDIR(st.st_mode):
                if depth + 1 > MAX_DEPTH:
                    raise _refuse(root, path, f"is nested deeper than {MAX_DEPTH} directories")
                target.mkdir()
                stack.append((path, target, depth + 1))
                continue
            total += st.st_size
            if total > max_bytes:
                raise _refuse(
                    root,
                    path,
                    f"takes the package over max_package_bytes ({total} > {max_bytes} bytes; "
                    "raise [tool.sdkmirror] max_package_bytes if the SDK really grew)",
                )
            _copy_file(path, target, st, root)
    for directory in reversed(done[1:]):
        _stamp(directory, DIR_MODE)
    return total


def _copy_file(path: Path, target: Path, st: os.stat_result, root: Path) -> None:
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _refuse(root, path, f"cannot be opened as a plain file ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        now = os.fstat(fh.fileno())
        # The entry swapped between lstat and open: judge what was opened, not what was seen.
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or entry_problem(now):
            raise _refuse(root, path, "changed while it was being copied")
        with open(target, "xb") as out:
            left = now.st_size
            while left > 0:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
    _stamp(target, FILE_MODE)


def _stamp(path: Path, mode: int) -> None:
    os.chmod(path, mode)
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def read_plain(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of one upstream file (a LICENSE), under the same rules as `copy_tree`."""
    st = os.lstat(path)
    problem = (
        name_problem(path.name)
        or entry_problem(st)
        or ("is a directory" if stat.S_ISDIR(st.st_mode) else None)
    )
    if problem is None and st.st_size > max_bytes:
        problem = f"is larger than max_package_bytes ({st.st_size} > {max_bytes} bytes)"
    if problem:
        raise UnsafeFile(f"{str(path)!r} {problem}; only a plain file is packaged")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        now = os.fstat(fh.fileno())
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or entry_problem(now):
            raise UnsafeFile(f"{str(path)!r} changed while it was being read; build again")
        return fh.read(now.st_size)


def write_plain(path: Path, data: bytes) -> None:
    """A generated file, written with the same mode and mtime as the copied ones."""
    with open(path, "xb") as out:
        out.write(data)
    _stamp(path, FILE_MODE)


def stamp_dir(path: Path) -> None:
    _stamp(path, DIR_MODE)
