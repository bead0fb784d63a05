"""Domain errors. Each carries one human line and the process exit code it maps to."""

from __future__ import annotations


class MirrorError(Exception):
    """An expected failure: printed as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(MirrorError):
    """`[tool.sdkmirror]` holds an invalid value."""

    exit_code = 2


class UsageError(MirrorError):
    """Bad input on the command line (hostile tag name, missing tag, version mismatch)."""

    exit_code = 2


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


class RemoteError(MirrorError):
    """A remote could not be reached or read."""

    exit_code = 4


class PushRefused(MirrorError):
    """Origin refused the push; nothing on origin changed."""

    exit_code = 5

    def __init__(self, message: str, *, reason: str = "", workflow_scope: bool = False) -> None:
        super().__init__(message)
        self.reason = reason or message  # the server's own words
        # The token may not push `.github/workflows/` changes (it lacks the `workflow` scope).
        self.workflow_scope = workflow_scope


class LockHeld(MirrorError):
    """Another run holds the lock on the work repository."""

    exit_code = 6


class VerificationFailed(MirrorError):
    """An audit found violations of the mirror's rules."""

    exit_code = 7


def last_line(text: str) -> str:
    """The last non-empty line of `text`, trimmed to something a log line can carry."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line:
            return line[:300]
    return ""
