"""The README's patch table: generated from the patch registry, and checked against it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sdkmirror.core import config as config_mod
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.config import Config
from sdkmirror.core.errors import MirrorError, UsageError
from sdkmirror.infra import console
from sdkmirror.mirror.patch_registry import Patch, PatchRegistry

TABLE_START = "<!-- patch-table:start -->"
TABLE_END = "<!-- patch-table:end -->"


class TableDrift(MirrorError):
    """The README's patch table does not match the registry."""

    exit_code = 7


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def render_table(patches: dict[str, Patch]) -> str:
    """The Markdown table the README carries between the patch-table markers."""
    rows = [
        "| Local patch branch | Based on tag | Reason | Upstream PR | Status |",
        "|---|---|---|---|---|",
    ]
    ordered = sorted(patches.values(), key=lambda p: (not p.active, p.created or date.min, p.name))
    for p in ordered:
        status = "active" if p.active else f"retired {p.retired or ''}".strip()
        rows.append(
            f"| `{p.branch}` | `{p.base}` | {_cell(p.reason)} | {_cell(p.upstream_pr) or '-'} "
            f"| {status} |"
        )
    if not ordered:
        rows.append("| (none) | | | | |")
    return "\n".join(rows)


def replace_table(readme: str, table: str) -> str:
    """`readme` with the text between the markers replaced by `table`."""
    start, end = readme.find(TABLE_START), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise UsageError(
            f"README.md has no {TABLE_START} ... {TABLE_END} markers; add them where the "
            "patch table belongs"
        )
    return readme[: start + len(TABLE_START)] + "\n" + table + "\n" + readme[end:]


def readme_path(cfg: Config) -> Path:
    return cfg.root / "README.md"


def sync_readme(cfg: Config, registry: PatchRegistry) -> bool:
    """Regenerate the README's table after a registry change, when the README has markers."""
    path = readme_path(cfg)
    if not path.is_file() or TABLE_START not in path.read_text(encoding="utf-8"):
        return False
    return write_table(path, registry)


def write_table(path: Path, registry: PatchRegistry) -> bool:
    text = path.read_text(encoding="utf-8")
    new_text = replace_table(text, render_table(registry.patches))
    if new_text == text:
        return False
    write_atomic(path, new_text)
    return True


def table(cfg: Config, *, check: bool) -> bool:
    """Rewrite the README's patch table; with `check`, fail instead when it has drifted."""
    path = readme_path(cfg)
    if not path.is_file():
        raise UsageError(f"{path} does not exist; the patch table lives in the README")
    registry = PatchRegistry(cfg.patch_registry)
    text = path.read_text(encoding="utf-8")
    expected = replace_table(text, render_table(registry.patches))
    if check:
        if expected != text:
            raise TableDrift(
                f"the patch table in {path.name} does not match {cfg.patch_registry.name}; "
                "run `invoke patch.table` and commit the result"
            )
        return False
    if expected != text:
        write_atomic(path, expected)
        return True
    return False


def main_table(*, check: bool) -> None:
    cfg = config_mod.load()
    changed = table(cfg, check=check)
    if check:
        console.result("patch.table: README.md matches the registry")
    else:
        console.result("patch.table: README.md " + ("updated" if changed else "already up to date"))
