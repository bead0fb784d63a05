"""What every Invoke task shares: config with flag overrides, remotes, errors as exit codes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke.exceptions import Exit

from . import config as config_mod
from .errors import MirrorError
from .gitio import remote_url

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Expected failures become one `error: ...` line and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MirrorError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def load_config(**overrides: Any) -> config_mod.Config:
    return config_mod.load(**overrides)


def origin_url(cfg: config_mod.Config, origin: str | None) -> str:
    """`--origin`, else the `origin` remote of the checkout that holds the configuration."""
    return origin or remote_url(cfg.root)


def write_json(path: str | Path | None, data: Any) -> None:
    if not path:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
