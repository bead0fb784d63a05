"""`invoke health`: write the page, its JSON and its Markdown; the summary goes to the step's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sdkmirror.core import config as config_mod
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.config import Config
from sdkmirror.core.errors import UsageError
from sdkmirror.infra import registry_url
from sdkmirror.ops import health_html, health_markdown
from sdkmirror.ops.health import Health
from sdkmirror.ops.health_sources import gather
from sdkmirror.ops.report import write_step_summary


def write(health: Health, out: Path) -> Path:
    """`index.html`, `health.json` and `health.md` in `out`; the page is returned."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory for index.html")
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    write_atomic(out / "health.json", json.dumps(health.to_json(), indent=2) + "\n", what="JSON")
    write_atomic(out / "health.md", health_markdown.render(health), what="the health summary")
    write_atomic(page, health_html.render(health), what="the health page")
    return page


def page(cfg: Config, out: Path) -> Path:
    """The page from `cfg`'s own reports directory (what `nox -s demo` shows)."""
    return write(gather(cfg, report_paths=[cfg.reports_dir], registry=None), out)


def main(*, out: str, reports_dirs: Sequence[str] = (), registry: str | None = None) -> Path:
    """`invoke health`: write the page and print its path; the summary goes to the step's."""
    cfg = config_mod.load()
    if registry:
        registry_url.parse(registry)  # refused before anything is read or written
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory for index.html")
    paths = [Path(p) for p in reports_dirs] or [cfg.reports_dir]
    health = gather(cfg, report_paths=paths, registry=registry)
    page = write(health, Path(out))
    write_step_summary(health_markdown.render(health))
    print(page.resolve())
    return page
