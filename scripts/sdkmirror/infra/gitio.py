"""Git plumbing over GitPython: remote ref listings, the work repository, fetch, atomic push."""

from __future__ import annotations

import configparser
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from sdkmirror.core.config import Config
from sdkmirror.core.errors import CommandError, MirrorError, PushRefused, RemoteError
from sdkmirror.infra import console, proc

ZERO = "0" * 40

# A child git must never stop to ask a person for a password, on a terminal or in CI, and
# never takes configuration from the machine or the user: only the settings passed here count.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "SSH_ASKPASS": "true",
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    # `refs/replace/*` in a cache would change what an object id reads as.
    "GIT_NO_REPLACE_OBJECTS": "1",
}
PUSH_TOKEN_ENV = "SDKMIRROR_PUSH_TOKEN"  # noqa: S105 - the name of a variable

# Every git call: hooks never run, whatever a restored cache or a checkout plants in hooks/.
SAFE_ARGS = ("-c", "core.hooksPath=/dev/null")
# Every network git call: an HTTP remote slower than 1 KB/s for 30 s is abandoned.
LOW_SPEED_ARGS = ("-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=30")
# Local and ssh transports have no low-speed limit: the process is killed after these seconds.
LIST_TIMEOUT = 120.0
TRANSFER_TIMEOUT = 1800.0
_TIMED_OUT = "Timeout: the command"

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
    """Environment for git children.

    With `auth` (origin operations only) an https URL gets the push token as an HTTP header
    scoped to that URL (`http.<url>.extraHeader`), never on a command line; upstream, any URL a
    flag names, or a URL a rewrite rule would substitute never sees it.
    """
    env = dict(_GIT_ENV)
    token = os.environ.get(PUSH_TOKEN_ENV)
    if auth and token and url and url.startswith("https://"):
        import base64

        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        n = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
        env["GIT_CONFIG_COUNT"] = str(n + 1)
        env[f"GIT_CONFIG_KEY_{n}"] = f"http.{url}.extraheader"
        env[f"GIT_CONFIG_VALUE_{n}"] = f"AUTHORIZATION: basic {basic}"
    return env


def timed_out(exc: GitCommandError) -> bool:
    return _TIMED_OUT in str(exc.stderr)


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
        return {
            r[len("refs/tags/") :]: o for r, o in self.refs.items() if r.startswith("refs/tags/")
        }

    def branches(self) -> dict[str, str]:
        return {
            r[len("refs/heads/") :]: o for r, o in self.refs.items() if r.startswith("refs/heads/")
        }

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
        out = git.Git().execute(
            ["git", *SAFE_ARGS, *LOW_SPEED_ARGS, "ls-remote", "--", url, *patterns],
            env=git_env(url, auth=name == "origin"),
            with_extended_output=False,
            kill_after_timeout=LIST_TIMEOUT,
        )
    except GitCommandError as exc:
        if timed_out(exc):
            raise stalled(name, url, LIST_TIMEOUT) from exc
        raise RemoteError(f"cannot read {name} {url}: {git_reason(exc)}") from exc
    return parse_ls_remote(str(out))


def _lines(captured: object) -> list[str]:
    """Lines of a GitPython-captured stream, without its `  stderr: '...'` wrapping."""
    text = captured if isinstance(captured, str) else ""
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        for wrapper in ("stderr: '", "stdout: '"):
            if ln.startswith(wrapper):
                ln = ln[len(wrapper) :]
        ln = ln.rstrip("'").strip()
        if ln:
            out.append(ln)
    return out


def git_reason(exc: GitCommandError) -> str:
    """git's own words: its first `fatal:` line says what is wrong (not its generic last)."""
    lines = _lines(exc.stderr)
    fatal = [ln for ln in lines if ln.startswith("fatal:")]
    if fatal:
        return fatal[0][:300]
    other = [ln for ln in lines if ln.startswith(("error:", "remote:"))]
    return (other or lines or [str(exc)])[-1][:300]


def wrap(exc: GitCommandError, what: str) -> CommandError:
    argv = [str(a) for a in exc.command] if isinstance(exc.command, list) else [str(exc.command)]
    stderr = exc.stderr if isinstance(exc.stderr, str) else ""
    return CommandError(
        argv, exc.status if isinstance(exc.status, int) else 1, "", stderr, what=what
    )


class WorkRepo:
    """A bare repository kept between runs; a cache only, so a broken one is rebuilt."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = self._open_or_rebuild()

    def _open_or_rebuild(self) -> git.Repo:
        if self.path.is_dir():
            try:
                self._distrust()
            except OSError as exc:
                console.warn(f"work repository {self.path} is unusable ({exc}); rebuilding it")
                shutil.rmtree(self.path, ignore_errors=True)
        if self.path.exists():
            try:
                repo = git.Repo(self.path)
                repo.git.rev_parse("--git-dir")
                repo.git.count_objects()
                return repo
            except (
                InvalidGitRepositoryError,
                NoSuchPathError,
                GitCommandError,
                ValueError,
                configparser.Error,  # garbage in its config file
            ):
                console.warn(f"work repository {self.path} is unusable; rebuilding it from scratch")
                shutil.rmtree(self.path, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(self.path, bare=True, initial_branch="main")
        (self.path / "config").write_text(WORK_REPO_CONFIG, encoding="utf-8")
        return repo

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
        self.repo = self._open_or_rebuild()

    def git(
        self,
        *args: str,
        url: str | None = None,
        auth: bool = False,
        timeout: float | None = None,
    ) -> str:
        net = LOW_SPEED_ARGS if url else ()
        return str(
            self.repo.git.execute(
                ["git", *SAFE_ARGS, *net, *args],
                env=git_env(url, auth=auth),
                kill_after_timeout=timeout,
            )
        )

    def fetch(self, url: str, refspecs: Iterable[str], *, name: str) -> None:
        specs = list(refspecs)
        if not specs:
            return
        argv = ["fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "--", url, *specs]
        auth = name == "origin"
        try:
            self.git(*argv, url=url, auth=auth, timeout=TRANSFER_TIMEOUT)
        except GitCommandError as exc:
            if timed_out(exc):
                raise stalled(name, url, TRANSFER_TIMEOUT) from exc
            reason = git_reason(exc)
            if _looks_corrupt(reason):
                console.warn(f"work repository damaged ({reason}); rebuilding and fetching again")
                self.rebuild()
                try:
                    self.git(*argv, url=url, auth=auth, timeout=TRANSFER_TIMEOUT)
                    return
                except GitCommandError as exc2:
                    if timed_out(exc2):
                        raise stalled(name, url, TRANSFER_TIMEOUT) from exc2
                    reason = git_reason(exc2)
            raise RemoteError(f"cannot fetch from {name} {url}: {reason}") from exc

    def has(self, sha: str) -> bool:
        try:
            self.git("cat-file", "-e", sha)
            return True
        except GitCommandError:
            return False

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self.git("merge-base", "--is-ancestor", ancestor, descendant)
            return True
        except GitCommandError as exc:
            if exc.status == 1:
                return False
            damaged(exc)
            raise wrap(exc, f"checking whether {ancestor[:12]} precedes {descendant[:12]}") from exc

    def object_type(self, sha: str) -> str:
        try:
            return self.git("cat-file", "-t", sha).strip()
        except GitCommandError as exc:
            damaged(exc)
            raise wrap(exc, f"reading object {sha[:12]}") from exc

    def update_refs(self, updates: Mapping[str, str]) -> None:
        """Point local refs at objects in one transaction."""
        if not updates:
            return
        script = "".join(f"update {ref} {sha}\n" for ref, sha in updates.items())
        try:
            proc.run(
                ["git", *SAFE_ARGS, "update-ref", "--stdin"],
                cwd=self.path,
                env={**os.environ, **git_env()},
                input=script,
                what="updating refs in the work repository",
            )
        except CommandError as exc:
            if _looks_corrupt(exc.stderr):
                raise WorkRepoDamaged(f"work repository damaged: {exc}") from exc
            raise

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
        except GitCommandError as exc:
            if timed_out(exc):
                raise stalled(name, url, TRANSFER_TIMEOUT) from exc
            # Our side failing to pack rotten objects is not origin refusing anything.
            if "[remote rejected]" not in str(exc.stdout) and "remote:" not in str(exc.stderr):
                damaged(exc)
            raise push_refusal(exc, name, url) from exc


class WorkRepoDamaged(MirrorError):
    """Objects in the work repository are unreadable; it is a cache, so rebuild it."""


def damaged(exc: GitCommandError) -> None:
    """Raise `WorkRepoDamaged` when git's complaint is about our own objects."""
    reason = git_reason(exc)
    if _looks_corrupt(" ".join(_lines(exc.stderr))):
        raise WorkRepoDamaged(f"work repository damaged: {reason}") from exc


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


def push_refusal(exc: GitCommandError, name: str, url: str) -> PushRefused:
    """Turn a failed push into one line with the server's own reason."""
    lines = _lines(exc.stderr) + _lines(exc.stdout)
    text = "\n".join(lines)
    remote = [ln[len("remote:") :].strip() for ln in lines if ln.startswith("remote:")]
    remote = [ln for ln in remote if ln]
    rejected = re.findall(r"\[(?:remote )?rejected\][^\n]*?\(([^)]*)\)", text)
    rejected += re.findall(r"^!\t[^\t]*\t\[(?:remote )?rejected\] \(([^)]*)\)", text, re.M)
    reason = " ".join(remote)[:400] or (rejected[0] if rejected else "") or git_reason(exc)
    return PushRefused(
        f"{name} refused the push ({url}): {reason}",
        reason=reason,
        workflow_scope=bool(WORKFLOW_SCOPE.search(text)),
    )


def remote_url(checkout: Path, remote: str = "origin") -> str:
    """The URL of a remote of a checkout (the default `--origin`)."""
    try:
        return git.Repo(checkout, search_parent_directories=True).remote(remote).url
    except (InvalidGitRepositoryError, NoSuchPathError, ValueError) as exc:
        raise RemoteError(f"{checkout} has no git remote {remote!r}; pass --origin URL") from exc


def origin_url(cfg: Config, origin: str | None) -> str:
    """`--origin`, else the `origin` remote of the checkout that holds the configuration."""
    return origin or remote_url(cfg.root)
