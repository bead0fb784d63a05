"""Domain errors and the one exit-code table. Each error is one human line and one code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code a task or `python -m sdkmirror` returns; the README's table lists them."""

    OK = 0
    FAILED = 1  # the run's own reports say it failed; a smoke build failed
    USAGE = 2  # bad input: flags, configuration, ledgers, reports (Invoke's usage errors too)
    DIVERGED = 3  # sync held the mirror branch on an upstream history rewrite
    REMOTE = 4  # a remote or registry unreachable or stalled
    PUSH_REFUSED = 5  # origin refused the push; nothing on origin changed
    LOCKED = 6  # another run holds the lock
    VIOLATION = 7  # an audit or drift check failed (verify, patch.table, release.render)
    ATTENTION = 8  # status: something needs the maintainer
    TOOLCHAIN = 9  # a toolchain could not be provisioned or is not what it claims
    REGISTRY_CONFLICT = 10  # the registry holds this version with other content
    LOCAL = 11  # a local file or directory cannot be read or written (disk full, not a dir)
    INTERRUPTED = 130  # Ctrl-C (SIGINT)


class MirrorError(Exception):
    """An expected failure: printed as one line, never as a traceback."""

    exit_code: int = ExitCode.FAILED
    # What a run had done when it failed (a sync's report), for the caller to still write.
    report: object | None = None

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(MirrorError):
    """`[tool.sdkmirror]` holds an invalid value."""

    exit_code = ExitCode.USAGE


class UsageError(MirrorError):
    """Bad input on the command line (hostile tag name, missing tag, version mismatch)."""

    exit_code = ExitCode.USAGE


class CommandError(MirrorError):
    """An external command failed; the message names the command, exit code and stderr tail."""

    def __init__(
        self,
        argv: list[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        *,
        what: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = last_line(stderr) or last_line(stdout)
        head = what or f"`{' '.join(argv[:3])}{' ...' if len(argv) > 3 else ''}`"
        msg = f"{head} failed (exit {returncode})"
        if tail:
            msg += f": {tail}"
        super().__init__(msg)


class GitError(CommandError):
    """A git command failed; the one error type every git child raises.

    `reason` is git's own first `fatal:` line (else its first `error:` line, else its last
    line): what is wrong, not the generic words git closes with. A caller that knows the
    situation raises a domain error from it (`RemoteError`, `PushRefused`: their exit codes).
    """

    def __init__(
        self,
        argv: list[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        *,
        what: str | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(argv, returncode, stdout, stderr, what=what)
        self.reason = git_complaint(stderr) or last_line(stdout) or f"exit {returncode}"
        self.timed_out = timed_out
        head = what or f"`{' '.join(argv[:3])}{' ...' if len(argv) > 3 else ''}`"
        self.args = (f"{head} failed (exit {returncode}): {self.reason}",)


def git_complaint(stderr: str) -> str:
    """git's first `fatal:` line, else its first `error:` line, else its last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for prefix in ("fatal:", "error:"):
        found = next((ln for ln in lines if ln.startswith(prefix)), None)
        if found:
            return found[:300]
    return lines[-1][:300] if lines else ""


class RemoteError(MirrorError):
    """A remote could not be reached or read."""

    exit_code = ExitCode.REMOTE


class PushRefused(MirrorError):
    """Origin refused the push; nothing on origin changed."""

    exit_code = ExitCode.PUSH_REFUSED

    def __init__(self, message: str, *, reason: str = "", workflow_scope: bool = False) -> None:
        super().__init__(message)
        self.reason = reason or message  # the server's own words
        # The token may not push `.github/workflows/` changes (it lacks the `workflow` scope).
        self.workflow_scope = workflow_scope


class LockHeld(MirrorError):
    """Another run holds the lock on the work repository."""

    exit_code = ExitCode.LOCKED


class VerificationFailed(MirrorError):
    """An audit found violations of the mirror's rules."""

    exit_code = ExitCode.VIOLATION


class RecordError(MirrorError):
    """A ledger, registry or report parses but does not have the declared shape."""

    exit_code = ExitCode.USAGE


class LocalError(MirrorError):
    """A local file or directory cannot be read or written."""

    exit_code = ExitCode.LOCAL


def os_problem(exc: OSError) -> str:
    """An OSError as one line: the path and the system's reason, never a traceback."""
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {reason}" if where else reason


def last_line(text: str) -> str:
    """The last non-empty line of `text`, trimmed to something a log line can carry."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line:
            return line[:300]
    return ""
