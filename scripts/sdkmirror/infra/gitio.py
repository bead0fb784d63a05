"""The one way to run git: `run` (and `pipe` for a streamed export), one environment, one error.

Every git child gets the same environment (`git_env`), hooks off, and on failure raises
`GitError` carrying git's own first `fatal:` line. GitPython stays only where it models
something: reading a checkout's refs and configuration, never running a command.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sdkmirror.core.config import Config
from sdkmirror.core.errors import (
    CommandError,
    GitError,
    MirrorError,
    PushRefused,
    RemoteError,
    UsageError,
)
from sdkmirror.infra import console, proc

if TYPE_CHECKING:  # GitPython costs ~60 ms to import; only checkouts that commit need it
    import git

ZERO = "0" * 40

# A child git must never stop to ask a person for anything, on a terminal or in CI, and never
# takes configuration from the machine or the user: only the settings passed here count.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "SSH_ASKPASS": "true",
    "GIT_EDITOR": "true",
    "GIT_PAGER": "cat",
    # English messages: the refusals and corruption this module recognizes are git's words.
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    # `refs/replace/*` in a cache would change what an object id reads as.
    "GIT_NO_REPLACE_OBJECTS": "1",
}
# What a git child inherits, and nothing else. An allow-list rather than "everything but
# GIT_*": a task started from a hook or `git rebase --exec` carries GIT_DIR/GIT_INDEX_FILE,
# GIT_CONFIG_PARAMETERS can plant `url.*.insteadOf` or an fsmonitor command, and variables with
# other names change git too (XDG_CONFIG_HOME, PAGER, EDITOR, LANG). Kept: what
# finds programs and temp space, reaches a remote (ssh agent, proxies, CA bundles), and names
# who commits (CI sets the identity in the environment).
_INHERITED = (
    "PATH",
    "HOME",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "GIT_SSH_COMMAND",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
)
# ssh asks on the terminal, not through stdin: batch mode fails instead of waiting.
_SSH_BATCH = "ssh -o BatchMode=yes"
PUSH_TOKEN_ENV = "SDKMIRROR_PUSH_TOKEN"  # noqa: S105 - the name of a variable

# Every git call: hooks never run, whatever a restored cache or a checkout plants in hooks/.
SAFE_ARGS = ("-c", "core.hooksPath=/dev/null")
# Every network git call: an HTTP remote slower than 1 KB/s for 30 s is abandoned.
LOW_SPEED_ARGS = ("-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=30")
# Local and ssh transports have no low-speed limit: the process is killed after these seconds.
LIST_TIMEOUT = 120.0
TRANSFER_TIMEOUT = 1800.0

# What the work repository's config is rewritten to on every run: a cache of objects only, so
# nothing planted in it (url.*.insteadOf, credential helpers, includes) can steer a push.
WORK_REPO_CONFIG = """\
[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = true
\tlogAllRefUpdates = false
[gc]
\tauto = 0
"""
# Files that change what objects or ancestry a repository reports; a cache never needs them.
_UNTRUSTED_FILES = (
    "info/grafts",
    "shallow",
    "objects/info/alternates",
    "objects/info/http-alternates",
)


def git_env(url: str | None = None, *, auth: bool = False) -> dict[str, str]:
    """The whole environment of a git child (see `_INHERITED` for what passes through).

    With `auth` (origin operations only) an https URL gets the push token as an HTTP header
    scoped to that URL (`http.<url>.extraHeader`), never on a command line; upstream, any URL a
    flag names, or a URL a rewrite rule would substitute never sees it.
    """
    env = {k: v for k in _INHERITED if (v := os.environ.get(k)) is not None}
    env.setdefault("PATH", os.defpath)
    env.setdefault("GIT_SSH_COMMAND", _SSH_BATCH)
    env.update(_GIT_ENV)
    token = os.environ.get(PUSH_TOKEN_ENV)
    if auth and token and url and url.startswith("https://"):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env["GIT_CONFIG_COUNT"] = "1"
        env["GIT_CONFIG_KEY_0"] = f"http.{url}.extraheader"
        env["GIT_CONFIG_VALUE_0"] = f"AUTHORIZATION: basic {basic}"
    return env


def _argv(args: Sequence[str | os.PathLike[str]], url: str | None) -> list[str]:
    return ["git", *SAFE_ARGS, *(LOW_SPEED_ARGS if url else ()), *(os.fspath(a) for a in args)]


def _what(args: Sequence[str | os.PathLike[str]]) -> str:
    """`git SUBCOMMAND` for messages: the first argument that is not an option."""
    words = [os.fspath(a) for a in args]
    sub = next((w for w in words if not w.startswith("-")), "")
    return f"`git {sub}`" if sub else "`git`"


def run(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    env_extra: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
    url: str | None = None,
    auth: bool = False,
    what: str | None = None,
) -> str:
    """Run `git ARGS` and return its stdout exactly as written; `GitError` when it fails.

    `url` is the remote the command talks to (low-speed limits apply); `auth` marks it as
    origin, so an https `url` gets the scoped push header. `env_extra` adds to the one
    environment (commit identity and dates), never replaces its safety settings.
    """
    env = git_env(url, auth=auth)
    # Nothing added may undo a safety setting or plant configuration (GIT_CONFIG_*).
    extra = env_extra or {}
    env.update({k: v for k, v in extra.items() if k not in _GIT_ENV and "CONFIG" not in k})
    argv = _argv(args, url)
    label = what or _what(args)
    try:
        result = proc.run(
            argv, cwd=cwd, env=env, timeout=timeout, input=input, check=False, exact=True
        )
    except CommandError as exc:  # not found (127) or killed on the timeout (124)
        raise GitError(
            exc.argv,
            exc.returncode,
            exc.stdout,
            exc.stderr,
            what=label,
            timed_out=exc.returncode == 124,
        ) from None
    if result.returncode != 0:
        raise GitError(argv, result.returncode, result.stdout, result.stderr, what=label)
    return result.stdout


STALL_ENV = "SDKMIRROR_STALL_SECONDS"
STALL_DEFAULT = 120.0  # the listing's limit: a transfer silent this long is abandoned


def stall_seconds() -> float:
    """How long a fetch or push may go without any output before it is abandoned."""
    text = os.environ.get(STALL_ENV, "").strip()
    if not text:
        return STALL_DEFAULT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 < value < float("inf")):
        raise UsageError(f"{STALL_ENV}={text!r} is not a number of seconds > 0; unset it or fix it")
    return value


def run_watched(
    *args: str | os.PathLike[str],
    url: str,
    name: str,
    stage: str,
    auth: bool = False,
    input: str | None = None,
) -> str:
    """`run` for a transfer (fetch, push) on any transport: git reports `--progress` on
    stderr, and when neither stream grows for `stall_seconds()` git and every process below
    it (transport helper, ssh) are killed: `RemoteError` naming the remote and the stage,
    exit 4. A slow transfer that still makes progress is never cut off.

    The output goes to files, not pipes: if this run is killed, git can still finish an
    atomic push alone instead of dying on a closed pipe halfway.
    """
    stall = stall_seconds()
    argv = _argv(args, url)
    env = git_env(url, auth=auth)
    tick = min(1.0, stall / 4)
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        try:
            child = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=out_f,
                stderr=err_f,
            )
        except FileNotFoundError as exc:
            raise GitError(argv, 127, "", f"git: not found ({exc.strerror})") from None
        if child.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                child.stdin.write((input or "").encode("utf-8", "surrogateescape"))
                child.stdin.close()
        seen, quiet_since, stalled_out = -1, time.monotonic(), False
        while True:
            try:
                child.wait(timeout=tick)
                break
            except subprocess.TimeoutExpired:
                pass
            size = os.fstat(out_f.fileno()).st_size + os.fstat(err_f.fileno()).st_size
            now = time.monotonic()
            if size != seen:
                seen, quiet_since = size, now
            elif now - quiet_since >= stall:
                stalled_out = True
                proc.kill_tree(child)
                break
        out_f.seek(0)
        err_f.seek(0)
        out = out_f.read().decode("utf-8", "surrogateescape")
        err = err_f.read().decode("utf-8", "surrogateescape")
    if stalled_out:
        raise RemoteError(
            f"{name} {url} stalled: no progress for {stall:g}s while {stage}; the remote is "
            f"hung or too slow, try again later (or raise {STALL_ENV})"
        )
    if child.returncode != 0:
        raise GitError(argv, child.returncode, out, err, what=_what(args))
    return out


def pipe(
    args: Sequence[str | os.PathLike[str]],
    reader: Sequence[str | os.PathLike[str]],
    *,
    reader_env: Mapping[str, str],
    what: str | None = None,
    timeout: float | None = None,
) -> None:
    """`git ARGS | READER` (no shell), for output too large to hold; git's side fails as
    `GitError`, the reader's as `CommandError`."""
    argv = _argv(args, None)
    try:
        proc.pipe(
            argv, reader, first_env=git_env(), second_env=reader_env, what=what, timeout=timeout
        )
    except CommandError as exc:
        if exc.argv != argv:
            raise
        raise GitError(
            exc.argv,
            exc.returncode,
            exc.stdout,
            exc.stderr,
            what=what or _what(args),
            timed_out=exc.returncode == 124,
        ) from None


def identity(checkout: git.Repo) -> dict[str, str]:
    """Who commits in a maintainer's checkout, for `run(env_extra=...)`.

    The environment's GIT_AUTHOR_*/GIT_COMMITTER_* (CI sets them) pass through `run` anyway;
    what they leave unset comes from `user.name`/`user.email` in the checkout's own and the
    user's configuration, which git children never read themselves.
    """
    reader = checkout.config_reader()
    found = {key: str(reader.get_value("user", key, "")) for key in ("name", "email")}
    out: dict[str, str] = {}
    for role in ("AUTHOR", "COMMITTER"):
        for key, value in found.items():
            var = f"GIT_{role}_{key.upper()}"
            if value and not os.environ.get(var):
                out[var] = value
    return out


def stalled(name: str, url: str, seconds: float) -> RemoteError:
    return RemoteError(
        f"{name} {url} stalled: no answer within {seconds:g}s; the remote is slow or hung, "
        "try again later"
    )


@dataclass(frozen=True)
class RemoteRefs:
    """What `git ls-remote` says: ref -> object, plus tag -> peeled commit."""

    refs: Mapping[str, str]
    peeled: Mapping[str, str] = field(default_factory=dict)

    def head(self, branch: str) -> str | None:
        return self.refs.get(f"refs/heads/{branch}")

    def tags(self) -> dict[str, str]:
        """tag name -> object, built once per listing (callers must not change it)."""
        return self._tags

    def branches(self) -> dict[str, str]:
        return self._branches

    @cached_property
    def _tags(self) -> dict[str, str]:
        return {
            r[len("refs/tags/") :]: o for r, o in self.refs.items() if r.startswith("refs/tags/")
        }

    @cached_property
    def _branches(self) -> dict[str, str]:
        return {
            r[len("refs/heads/") :]: o for r, o in self.refs.items() if r.startswith("refs/heads/")
        }

    def is_annotated(self, name: str) -> bool:
        """A tag ref the listing peels (`^{}`) is a tag object; one it does not is lightweight."""
        return f"refs/tags/{name}" in self.peeled

    def commit_of_tag(self, name: str) -> str | None:
        ref = f"refs/tags/{name}"
        return self.peeled.get(ref, self.refs.get(ref))


def parse_ls_remote(text: str) -> RemoteRefs:
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in text.splitlines():
        if "\t" not in line:
            continue
        sha, ref = line.split("\t", 1)
        if ref.endswith("^{}"):
            peeled[ref[:-3]] = sha
        else:
            refs[ref] = sha
    return RemoteRefs(refs, peeled)


def ls_remote(url: str, patterns: Sequence[str] = (), *, name: str = "remote") -> RemoteRefs:
    """List a remote's refs without fetching any object."""
    try:
        out = run(
            "ls-remote",
            "--",
            url,
            *patterns,
            url=url,
            auth=name == "origin",
            timeout=LIST_TIMEOUT,
        )
    except GitError as exc:
        if exc.timed_out:
            raise stalled(name, url, LIST_TIMEOUT) from exc
        raise RemoteError(f"cannot read {name} {url}: {exc.reason}") from exc
    return parse_ls_remote(out)


class WorkRepo:
    """A bare repository kept between runs; a cache only, so a broken one is rebuilt."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._open_or_rebuild()

    def _open_or_rebuild(self) -> None:
        if self.path.is_dir():
            try:
                self._distrust()
            except OSError as exc:
                console.warn(f"work repository {self.path} is unusable ({exc}); rebuilding it")
                shutil.rmtree(self.path, ignore_errors=True)
        if self.path.exists():
            try:
                self.git("rev-parse", "--git-dir")
                self.git("count-objects")
                return
            except GitError:
                console.warn(f"work repository {self.path} is unusable; rebuilding it from scratch")
                shutil.rmtree(self.path, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        run("init", "--quiet", "--bare", "--template=", "-b", "main", self.path)
        (self.path / "config").write_text(WORK_REPO_CONFIG, encoding="utf-8")

    def _distrust(self) -> None:
        """Keep only objects and refs: the config from a template, no grafts or alternates.

        The work repository may be restored from a cache other jobs can write. Stale `*.lock`
        files a killed git left are removed too: callers hold the run lock, so no run of ours
        is using them.
        """
        config = self.path / "config"
        if config.is_symlink() or config.exists():
            config.unlink()
        config.write_text(WORK_REPO_CONFIG, encoding="utf-8")
        for rel in _UNTRUSTED_FILES:
            p = self.path / rel
            if p.is_symlink() or p.is_file():
                p.unlink()
        stale = [*self.path.glob("*.lock"), *(self.path / "refs").rglob("*.lock")]
        for lock in stale:
            if lock.is_file() and not lock.is_symlink():
                console.warn(f"removing a stale lock a killed git left: {lock}")
                lock.unlink()

    def rebuild(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._open_or_rebuild()

    def git(
        self,
        *args: str,
        url: str | None = None,
        auth: bool = False,
        timeout: float | None = None,
        input: str | None = None,
    ) -> str:
        """`run` in this repository; named by `--git-dir`, so a broken one is never mistaken
        for a repository around it."""
        return run(
            f"--git-dir={self.path}", *args, url=url, auth=auth, timeout=timeout, input=input
        )

    def fetch(self, url: str, refspecs: Iterable[str], *, name: str) -> None:
        specs = list(refspecs)
        if not specs:
            return
        argv = [
            f"--git-dir={self.path}",
            "fetch",
            "--no-tags",
            "--no-write-fetch-head",
            "--progress",
            "--",
            url,
            *specs,
        ]
        auth = name == "origin"
        stage = "fetching objects (after the listing)"
        try:
            run_watched(*argv, url=url, name=name, stage=stage, auth=auth)
        except GitError as exc:
            reason = exc.reason
            if _looks_corrupt(exc.stderr):
                console.warn(f"work repository damaged ({reason}); rebuilding and fetching again")
                self.rebuild()
                try:
                    run_watched(*argv, url=url, name=name, stage=stage, auth=auth)
                    return
                except GitError as exc2:
                    reason = exc2.reason
            raise RemoteError(f"cannot fetch from {name} {url}: {reason}") from exc

    def has(self, sha: str) -> bool:
        try:
            self.git("cat-file", "-e", sha)
            return True
        except GitError:
            return False

    def object_types(self, shas: Iterable[str]) -> dict[str, str]:
        """sha -> type (`commit`, `tag`, `tree`, `blob`, or `missing`), in one `cat-file`."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        try:
            out = self.git(
                "cat-file",
                "--batch-check=%(objectname) %(objecttype)",
                input="".join(f"{s}\n" for s in wanted),
            )
        except GitError as exc:
            damaged(exc)
            raise
        types: dict[str, str] = {}
        for sha, line in zip(wanted, out.splitlines(), strict=False):
            parts = line.split()
            types[sha] = parts[1] if len(parts) == 2 and parts[0] == sha else "missing"
        return types

    def missing(self, shas: Iterable[str]) -> set[str]:
        """The objects of `shas` this repository does not hold, asked in one `cat-file`."""
        return {s for s, t in self.object_types(shas).items() if t == "missing"}

    def all_commits(self, tip: str) -> set[str]:
        """Every commit reachable from `tip`, in one `rev-list` (ancestry for many heads)."""
        try:
            return set(self.git("rev-list", tip, "--").split())
        except GitError as exc:
            damaged(exc)
            raise

    def push_staged(self, url: str, updates: Mapping[str, str], *, name: str = "origin") -> None:
        """Push `ref -> object` atomically, without force, through two glob refspecs.

        The refs are created in a throwaway repository that borrows this one's objects
        (alternates), in one `update-ref --stdin`, so git matches two globs instead of one
        explicit refspec per ref (linear where thousands of explicit refspecs are quadratic),
        and nothing is left to clean up after.
        """
        if not updates:
            return
        script = "".join(f"update {ref} {sha}\n" for ref, sha in updates.items())
        spaces = sorted({ref.split("/")[1] for ref in updates})
        specs = [f"refs/{space}/*:refs/{space}/*" for space in spaces]
        with tempfile.TemporaryDirectory(prefix="push-", dir=self.path.parent) as tmp:
            stage = Path(tmp) / "stage.git"
            run("init", "--quiet", "--bare", "--template=", stage)
            info = stage / "objects" / "info"
            info.mkdir(parents=True, exist_ok=True)
            (info / "alternates").write_text(f"{(self.path / 'objects').resolve()}\n")
            try:
                run(f"--git-dir={stage}", "update-ref", "--stdin", input=script)
            except GitError as exc:
                damaged(exc)
                raise
            try:
                run_watched(
                    f"--git-dir={stage}",
                    "push",
                    "--atomic",
                    "--porcelain",
                    "--progress",
                    "--",
                    url,
                    *specs,
                    url=url,
                    name=name,
                    stage="pushing (after the listing)",
                    auth=True,
                )
            except GitError as exc:
                if "[remote rejected]" not in exc.stdout and "remote:" not in exc.stderr:
                    damaged(exc)
                raise push_refusal(exc, name, url) from exc

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self.git("merge-base", "--is-ancestor", ancestor, descendant)
            return True
        except GitError as exc:
            if exc.returncode == 1:
                return False
            damaged(exc)
            raise GitError(
                exc.argv,
                exc.returncode,
                exc.stdout,
                exc.stderr,
                what=f"checking whether {ancestor[:12]} precedes {descendant[:12]}",
            ) from exc

    def object_type(self, sha: str) -> str:
        try:
            return self.git("cat-file", "-t", sha).strip()
        except GitError as exc:
            damaged(exc)
            raise GitError(
                exc.argv,
                exc.returncode,
                exc.stdout,
                exc.stderr,
                what=f"reading object {sha[:12]}",
            ) from exc

    def update_refs(self, updates: Mapping[str, str]) -> None:
        """Point local refs at objects in one transaction."""
        if not updates:
            return
        script = "".join(f"update {ref} {sha}\n" for ref, sha in updates.items())
        try:
            self.git("update-ref", "--stdin", input=script)
        except GitError as exc:
            damaged(exc)
            raise GitError(
                exc.argv,
                exc.returncode,
                exc.stdout,
                exc.stderr,
                what="updating refs in the work repository",
            ) from exc

    def push_atomic(self, url: str, updates: Mapping[str, str], *, name: str = "origin") -> None:
        """Push `ref -> object` in one atomic transaction without force: ours never move."""
        if not updates:
            return
        specs = [f"{sha}:{ref}" for ref, sha in updates.items()]
        try:
            self.git(
                "push",
                "--atomic",
                "--porcelain",
                "--",
                url,
                *specs,
                url=url,
                auth=True,
                timeout=TRANSFER_TIMEOUT,
            )
        except GitError as exc:
            if exc.timed_out:
                raise stalled(name, url, TRANSFER_TIMEOUT) from exc
            # Our side failing to pack rotten objects is not origin refusing anything.
            if "[remote rejected]" not in exc.stdout and "remote:" not in exc.stderr:
                damaged(exc)
            raise push_refusal(exc, name, url) from exc


class WorkRepoDamaged(MirrorError):
    """Objects in the work repository are unreadable; it is a cache, so rebuild it."""


def damaged(exc: GitError) -> None:
    """Raise `WorkRepoDamaged` when git's complaint is about our own objects."""
    if _looks_corrupt(exc.stderr):
        raise WorkRepoDamaged(f"work repository damaged: {exc.reason}") from exc


_CORRUPT = re.compile(
    r"corrupt|bad object|not a git repository|unable to read|missing (?:blob|tree|commit)"
    r"|loose object .* is corrupt|index-pack failed|packfile .* cannot be accessed"
    # A damaged pack still advertises its objects, so the remote sends too little.
    r"|did not send all necessary objects",
    re.I,
)


def _looks_corrupt(reason: str) -> bool:
    return bool(_CORRUPT.search(reason))


WORKFLOW_SCOPE = re.compile(r"refusing to allow .* (?:create|update) workflow", re.I | re.S)


def push_refusal(exc: GitError, name: str, url: str) -> PushRefused:
    """Turn a failed push into one line with the server's own reason."""
    lines = [ln.strip() for ln in (exc.stderr + "\n" + exc.stdout).splitlines() if ln.strip()]
    text = "\n".join(lines)
    remote = [ln[len("remote:") :].strip() for ln in lines if ln.startswith("remote:")]
    remote = [ln for ln in remote if ln]
    rejected = re.findall(r"\[(?:remote )?rejected\][^\n]*?\(([^)]*)\)", text)
    reason = " ".join(remote)[:400] or (rejected[0] if rejected else "") or exc.reason
    return PushRefused(
        f"{name} refused the push ({url}): {reason}",
        reason=reason,
        workflow_scope=bool(WORKFLOW_SCOPE.search(text)),
    )


def remote_url(checkout: Path, remote: str = "origin") -> str:
    """The URL of a remote of a checkout (the default `--origin`)."""
    # A git child, not GitPython: the no-op sync must not pay for importing it.
    try:
        url = run("-C", checkout, "config", "--get", f"remote.{remote}.url").strip()
    except (GitError, OSError) as exc:
        raise RemoteError(f"{checkout} has no git remote {remote!r}; pass --origin URL") from exc
    if not url:
        raise RemoteError(f"{checkout} has no git remote {remote!r}; pass --origin URL")
    return url


def origin_url(cfg: Config, origin: str | None) -> str:
    """`--origin`, else the `origin` remote of the checkout that holds the configuration."""
    return origin or remote_url(cfg.root)
