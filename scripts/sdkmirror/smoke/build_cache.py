"""A content-addressed cache of built SDKs: a tree is built once per toolchain.

An entry is data, never code we run: the files a build produced (the SDK's `dist/`, the
`package.json` it was built from), stored under the build's key (`build_key`). Layout under the
cache's root:

    entries/<key>/files/...      the outputs, plain files only
    entries/<key>/manifest.json  every file's size and sha256, written last
    entries/<key>/used           touched on each use: least recently used goes first
    locks/<key>.lock             one writer (and one user) per key at a time
    staging/                     entries being written, renamed into place when complete

An entry without a readable manifest, or whose files differ from it, is partial or corrupt: it
is removed and built again, never used. Files are copied out and each copy checked against the
manifest, so what a build uses is what the manifest describes. Whoever uses an entry checks
its contents like any fresh build output (the import check, the package checks).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.config import Config
from sdkmirror.core.errors import LocalError, LockHeld, os_problem
from sdkmirror.infra import console
from sdkmirror.smoke.build_key import BuildKey

MANIFEST = "manifest.json"
USED = "used"
FORMAT = 1
LOCK_TIMEOUT_S = 3600.0  # a real build of the SDK takes a minute; a stuck one is another story
_CHUNK = 1 << 20


class CacheMiss(Exception):
    """An entry failed its check while being copied out: it was removed, build again."""


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    manifest: Mapping[str, Any]

    @property
    def files(self) -> Mapping[str, Mapping[str, Any]]:
        files: Mapping[str, Mapping[str, Any]] = self.manifest["files"]
        return files

    @property
    def size(self) -> int:
        return int(self.manifest.get("bytes", 0))

    @property
    def meta(self) -> Mapping[str, Any]:
        meta: Mapping[str, Any] = self.manifest.get("meta") or {}
        return meta


@dataclass(frozen=True)
class Listed:
    """One directory under `entries/`, as `cache.list` and `cache.prune` see it."""

    key: str
    path: Path
    size: int
    last_used: float
    entry: Entry | None  # None: partial or corrupt
    problem: str = ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _manifest_problem(key: str, data: Any) -> str:
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return "its manifest is not this cache's format or names another key"
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        return "its manifest lists no files"
    for rel, info in files.items():
        parts = rel.split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            return f"its manifest names the path {rel!r}"
        if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
            return f"its manifest has no hash for {rel}"
        if not isinstance(info.get("size"), int):
            return f"its manifest has no size for {rel}"
    return ""


@dataclass
class BuildCache:
    """The cache at `root`, kept under `max_bytes` by evicting least recently used entries."""

    root: Path
    max_bytes: int
    lock_timeout: float = LOCK_TIMEOUT_S
    _held: set[str] = field(default_factory=set)

    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    @property
    def verdicts_dir(self) -> Path:
        """Where the publish checks' remembered passes live (`release.publish.verdicts`)."""
        return self.root / "verdicts"

    def entry_dir(self, key: str) -> Path:
        return self.entries_dir / key

    # --- one key ---------------------------------------------------------------------------

    @contextmanager
    def hold(self, key: BuildKey | str) -> Iterator[None]:
        """The key's lock: one run builds (or copies out, or evicts) an entry at a time; a
        second run on the same key waits, then finds the entry the first one stored."""
        digest = key if isinstance(key, str) else key.digest
        path = self.root / "locks" / f"{digest}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path), timeout=self.lock_timeout)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                console.info(f"waiting for another run building {digest[:16]} ({path})")
                lock.acquire()
        except Timeout:
            raise LockHeld(
                f"another run has held {path} for {self.lock_timeout:g}s; let it finish, or "
                "stop it, then run again"
            ) from None
        except OSError as exc:
            raise LocalError(
                f"cannot take the build cache lock {path} ({os_problem(exc)}); make "
                f"{self.root} a writable directory"
            ) from None
        self._held.add(digest)
        try:
            yield
        finally:
            self._held.discard(digest)
            lock.release()

    def lookup(self, key: BuildKey | str) -> Entry | None:
        """The complete entry for `key`, or None; a partial or corrupt one is removed."""
        digest = key if isinstance(key, str) else key.digest
        where = self.entry_dir(digest)
        if not where.exists():
            return None
        entry, problem = self._read(digest, where)
        if entry is None:
            console.warn(f"build cache entry {digest[:16]} {problem}; removing it, building again")
            self._remove(where)
        return entry

    def _read(self, key: str, where: Path) -> tuple[Entry | None, str]:
        try:
            data = json.loads((where / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, "has no manifest (a run stopped while writing it)"
        except (OSError, ValueError) as exc:
            return None, f"has an unreadable manifest ({exc})"
        problem = _manifest_problem(key, data)
        if problem:
            return None, problem
        present: dict[str, int] = {}
        files_dir = where / "files"
        for dirpath, dirs, files in os.walk(files_dir):
            for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(dirpath, d)))]:
                full = Path(dirpath, name)
                st = full.lstat()
                rel = full.relative_to(files_dir).as_posix()
                if not stat.S_ISREG(st.st_mode):
                    return None, f"holds {rel}, which is not a plain file"
                present[rel] = st.st_size
        listed = {rel: info["size"] for rel, info in data["files"].items()}
        if present != listed:
            odd = sorted(set(present) ^ set(listed)) or sorted(
                r for r in listed if present[r] != listed[r]
            )
            return None, f"does not match its manifest ({odd[0]})"
        return Entry(key, where, data), ""

    def restore(self, entry: Entry, name: str, dest: Path) -> None:
        """Copy the entry's `name` (a file, or a directory's files) to `dest`, checking each
        copy against the manifest. On a mismatch the copy and the entry are removed and
        `CacheMiss` is raised: build again."""
        prefix = name.rstrip("/") + "/"
        picked = {
            rel: info for rel, info in entry.files.items() if rel == name or rel.startswith(prefix)
        }
        if not picked:
            raise CacheMiss(f"build cache entry {entry.key[:16]} holds no {name}")
        try:
            for rel, info in sorted(picked.items()):
                target = dest if rel == name else dest / rel[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                shutil.copyfile(entry.path / "files" / rel, target)
                os.chmod(target, 0o755 if info.get("executable") else 0o644)
                if target.stat().st_size != info["size"] or _sha256(target) != info["sha256"]:
                    raise CacheMiss(f"build cache entry {entry.key[:16]}: {rel} is corrupt")
        except (CacheMiss, OSError) as exc:
            if dest.is_dir():
                shutil.rmtree(dest, ignore_errors=True)
            else:
                dest.unlink(missing_ok=True)
            console.warn(f"{exc}; removing the entry, building again")
            self._remove(entry.path)
            raise CacheMiss(str(exc)) from None
        self.touch(entry)

    def touch(self, entry: Entry) -> None:
        stamp = entry.path / USED
        try:
            stamp.touch()
            os.utime(stamp)
        except OSError:
            return  # a read-only cache still serves; it only forgets the order of use

    def store(
        self,
        key: BuildKey,
        sources: Mapping[str, Path],
        *,
        label: str,
        meta: Mapping[str, Any] | None = None,
    ) -> Entry | None:
        """Store the files of `sources` (entry name -> a file or a directory) under `key`; the
        manifest goes last, then the entry is renamed into place. Outputs that hold anything but
        plain files and directories, or that alone exceed the cache's size, are not stored
        (None). Evicts least recently used entries beyond `max_bytes`."""
        where = self.entry_dir(key.digest)
        staging = self.root / "staging" / f"{key.digest}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            staging.mkdir(parents=True)
            files: dict[str, dict[str, Any]] = {}
            for name, src in sources.items():
                problem = self._copy_in(src, staging / "files" / name, name, files)
                if problem:
                    console.warn(f"not caching the build of {label}: {problem}")
                    return None
            total = sum(int(info["size"]) for info in files.values())
            if total > self.max_bytes:
                console.info(
                    f"not caching the build of {label}: {total} bytes exceed the build cache's "
                    f"{self.max_bytes} (build_cache_max_bytes)"
                )
                return None
            manifest = {
                "format": FORMAT,
                "key": key.digest,
                "label": label,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "inputs": dict(key.inputs),
                "meta": dict(meta or {}),
                "bytes": total,
                "files": files,
            }
            write_atomic(staging / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
            (staging / USED).touch()
            self._remove(where)  # a corrupt one the lookup could not remove
            where.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, where)
        except OSError as exc:
            console.warn(f"not caching the build of {label}: {os_problem(exc)}")
            return None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.evict(keep={key.digest})
        return Entry(key.digest, where, manifest)

    @staticmethod
    def _copy_in(src: Path, dest: Path, name: str, files: dict[str, dict[str, Any]]) -> str:
        st = src.lstat()
        if stat.S_ISREG(st.st_mode):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            files[name] = {
                "size": dest.stat().st_size,
                "sha256": _sha256(dest),
                "executable": bool(st.st_mode & stat.S_IXUSR),
            }
            return ""
        if not stat.S_ISDIR(st.st_mode):
            return f"{name} is not a plain file or directory"
        for child in sorted(src.iterdir()):
            problem = BuildCache._copy_in(child, dest / child.name, f"{name}/{child.name}", files)
            if problem:
                return problem
        return ""

    def _remove(self, where: Path) -> None:
        """Out of `entries/` in one rename, then deleted: never seen half-removed."""
        if not where.exists():
            return
        trash = self.root / "staging" / f"{where.name}.removed.{secrets.token_hex(4)}"
        try:
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(where, trash)
        except OSError:
            trash = where
        shutil.rmtree(trash, ignore_errors=True)

    # --- the whole cache ---------------------------------------------------------------------

    def listing(self) -> list[Listed]:
        """Every entry, least recently used first (partial and corrupt ones included)."""
        found: list[Listed] = []
        try:
            children = sorted(self.entries_dir.iterdir())
        except FileNotFoundError:
            return []
        for where in children:
            if not where.is_dir() or where.is_symlink():
                continue
            entry, problem = self._read(where.name, where)
            used = where / USED
            try:
                last = used.stat().st_mtime if used.exists() else where.stat().st_mtime
            except OSError:
                last = 0.0
            size = entry.size if entry else _du(where)
            found.append(Listed(where.name, where, size, last, entry, problem))
        found.sort(key=lambda e: (e.last_used, e.key))
        return found

    def plan_prune(self, max_bytes: int | None = None, *, everything: bool = False) -> PrunePlan:
        """What `prune` removes: partial or corrupt entries, leftovers of stopped runs, and the
        least recently used entries until the rest fits in `max_bytes`."""
        budget = self.max_bytes if max_bytes is None else max_bytes
        listed = self.listing()
        plan = PrunePlan(self.root, budget)
        keep: list[Listed] = []
        for item in listed:
            if everything:
                plan.remove.append((item, "everything asked"))
            elif item.entry is None:
                plan.remove.append((item, f"partial or corrupt: {item.problem}"))
            else:
                keep.append(item)
        total = sum(i.size for i in keep)
        for item in keep:  # least recently used first
            if total <= budget:
                break
            plan.remove.append((item, "least recently used, over the size budget"))
            total -= item.size
        plan.kept_bytes = total
        plan.kept = len(keep) - sum(1 for i, _ in plan.remove if i.entry is not None)
        staging = self.root / "staging"
        if staging.is_dir():
            plan.leftovers = [p for p in sorted(staging.iterdir()) if not _writer_alive(p)]
        if everything and self.verdicts_dir.is_dir():
            plan.verdicts = self.verdicts_dir
        return plan

    def prune(self, plan: PrunePlan) -> list[str]:
        """Apply `plan`; an entry in use by another run (its lock held) is left for later."""
        removed: list[str] = []
        for item, _why in plan.remove:
            if item.key in self._held:
                continue
            lock = FileLock(str(self.root / "locks" / f"{item.key}.lock"))
            try:
                with lock.acquire(timeout=0):
                    self._remove(item.path)
                removed.append(item.key)
            except Timeout:
                console.info(f"build cache entry {item.key[:16]} is in use; left for later")
            except OSError as exc:
                console.warn(f"cannot remove {item.path}: {os_problem(exc)}")
        for left in [*plan.leftovers, *([plan.verdicts] if plan.verdicts else [])]:
            shutil.rmtree(left, ignore_errors=True)
        return removed

    def evict(self, *, keep: set[str] | None = None) -> list[str]:
        """Least recently used entries out until the cache fits in `max_bytes`."""
        plan = self.plan_prune()
        plan.remove = [(i, why) for i, why in plan.remove if i.key not in (keep or set())]
        plan.leftovers = []
        removed = self.prune(plan)
        if removed:
            console.info(
                f"build cache: evicted {len(removed)} least recently used entries "
                f"(build_cache_max_bytes = {self.max_bytes})"
            )
        return removed


def for_config(cfg: Config) -> BuildCache | None:
    """The configured cache (`build_cache_max_bytes`, `$SDKMIRROR_BUILD_CACHE`); None when its
    size is 0, which turns caching off."""
    if cfg.build_cache_max_bytes == 0:
        return None
    return BuildCache(cfg.build_cache_dir, cfg.build_cache_max_bytes)


def _writer_alive(path: Path) -> bool:
    """Whether the run writing a staging directory (`<key>.<pid>.<random>`) still runs."""
    parts = path.name.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class PrunePlan:
    root: Path
    budget: int
    remove: list[tuple[Listed, str]] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    verdicts: Path | None = None  # the check verdicts, forgotten with everything (`--all`)
    kept: int = 0
    kept_bytes: int = 0

    @property
    def freed(self) -> int:
        return sum(i.size for i, _ in self.remove)

    def as_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "budget_bytes": self.budget,
            "remove": [{"key": i.key, "bytes": i.size, "why": why} for i, why in self.remove],
            "leftovers": [str(p) for p in self.leftovers],
            "verdicts": str(self.verdicts) if self.verdicts else None,
            "kept": self.kept,
            "kept_bytes": self.kept_bytes,
        }


def age(seconds_since_epoch: float) -> str:
    """`3m`, `5h`, `2d`: how long ago, for the listing."""
    delta = max(0.0, time.time() - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"
