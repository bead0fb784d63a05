"""The GitHub side of a run over PyGithub: issue alerts, Releases, and the retry policy.

One retry layer only: PyGithub's own urllib3 retry is switched off (`retry=None`) and every
call goes through tenacity here, so attempts and waits are bounded in one place. GitHub
trouble never fails a run: callers get `GitHubUnavailable` and report it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException, RateLimitExceededException
from github.Repository import Repository
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import console

TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret
REPO_ENV = "GITHUB_REPOSITORY"
API_ENV = "GITHUB_API_URL"
RETRY_ENV = "SDKMIRROR_GITHUB_RETRY"

T = TypeVar("T")


class GitHubUnavailable(MirrorError):
    """GitHub could not be reached, refused us, or kept failing after the retries."""

    exit_code = 0  # GitHub's trouble is reported, never turned into a failed run


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `attempts` calls, waits doubling from `backoff`, each capped."""

    attempts: int = 4
    backoff: float = 2.0
    max_wait: float = 60.0
    # Pause between writes, as GitHub asks of clients to stay under its secondary rate limit.
    write_gap: float = 1.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """`SDKMIRROR_GITHUB_RETRY="attempts=3,backoff=0.1,max_wait=1,write_gap=0"`."""
        raw = os.environ.get(RETRY_ENV, "").strip()
        if not raw:
            return cls()
        values: dict[str, float] = {}
        for item in raw.split(","):
            key, _, value = item.partition("=")
            key = key.strip()
            if key not in cls.__dataclass_fields__:
                raise MirrorError(
                    f"{RETRY_ENV}: unknown key {key!r}; use attempts, backoff, max_wait, write_gap"
                )
            try:
                values[key] = float(value)
            except ValueError:
                raise MirrorError(f"{RETRY_ENV}: {key} must be a number, got {value!r}") from None
        default = cls()
        return cls(
            int(values.get("attempts", default.attempts)),
            values.get("backoff", default.backoff),
            values.get("max_wait", default.max_wait),
            values.get("write_gap", default.write_gap),
        )


def _header(exc: GithubException, name: str) -> str | None:
    for key, value in (exc.headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _rate_limited(exc: GithubException) -> bool:
    if isinstance(exc, RateLimitExceededException):
        return True
    return exc.status in (403, 429) and (
        _header(exc, "retry-after") is not None or _header(exc, "x-ratelimit-remaining") == "0"
    )


def transient(exc: BaseException) -> bool:
    """Worth another attempt: server errors, rate limits, dropped connections."""
    if isinstance(exc, GithubException):
        return exc.status >= 500 or _rate_limited(exc)
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _server_wait(exc: BaseException) -> float | None:
    """The wait GitHub asked for (Retry-After, else the rate-limit reset), in seconds."""
    if not isinstance(exc, GithubException) or not _rate_limited(exc):
        return None
    retry_after = _header(exc, "retry-after")
    if retry_after and retry_after.isdigit():
        return float(retry_after)
    reset = _header(exc, "x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        message = exc.message or data.get("message")
        kind = "rate limited" if _rate_limited(exc) else f"HTTP {exc.status}"
        return f"{kind}: {message or 'no message'}"
    return f"{type(exc).__name__}: {exc}"


class Client:
    """A repository on GitHub, every call retried per `policy`."""

    def __init__(
        self,
        repo: str,
        token: str,
        *,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        kwargs: dict[str, Any] = {"base_url": base_url} if base_url else {}
        self.gh = Github(
            auth=Auth.Token(token),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=self.policy.write_gap or None,
            timeout=15,
            **kwargs,
        )
        self.name = repo
        self.repo: Repository = self.gh.get_repo(repo, lazy=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> tuple[Client | None, str]:
        """A client from `GITHUB_TOKEN`/`GITHUB_REPOSITORY`, or None and why not."""
        env = os.environ if env is None else env
        token, repo = env.get(TOKEN_ENV, ""), env.get(REPO_ENV, "")
        if not token:
            return None, f"{TOKEN_ENV} is not set; set it (the workflow's token) to update GitHub"
        if repo.count("/") != 1:
            return None, f"{REPO_ENV} must be OWNER/NAME, got {repo!r}"
        return cls(
            repo, token, base_url=env.get(API_ENV) or None, policy=RetryPolicy.from_env()
        ), ""

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run `fn` with bounded retries; raise `GitHubUnavailable` naming `what` if it fails."""
        policy = self.policy

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            asked = _server_wait(exc) if exc else None
            backoff = policy.backoff * 2 ** (state.attempt_number - 1)
            return min(policy.max_wait, asked if asked is not None else backoff)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0
            console.warn(f"GitHub: {what}: {_why(exc) if exc else '?'}; retrying in {delay:.1f}s")

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(max(1, policy.attempts)),
                wait=wait,
                retry=retry_if_exception(transient),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    return fn()
        except (GithubException, requests.RequestException) as exc:
            raise GitHubUnavailable(f"GitHub: {what} failed: {_why(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --- releases -----------------------------------------------------------------------

    def release(self, tag: str) -> Any | None:
        def get() -> Any | None:
            try:
                return self.repo.get_release(tag)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise

        return self.call(f"reading the release for {tag}", get)
