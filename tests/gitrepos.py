"""Real git repositories for tests: a bare upstream with a working clone, a bare origin."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TAG = "@moonshot-ai/kimi-code@{}"


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    cp = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and cp.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {cp.stderr}")
    return cp.stdout.strip()


@cache
def _template() -> Path:
    where = Path(tempfile.mkdtemp(prefix="sdkmirror-repos-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    GitRepos.init(where)
    return where


@dataclass
class GitRepos:
    base: Path
    upstream: Path  # bare
    work: Path  # the upstream developers' clone
    origin: Path  # bare, the mirror

    @classmethod
    def create(cls, base: Path) -> GitRepos:
        """The three repositories at `base`: a copy of a set `git init` made once per process
        (a copy is a quarter of the cost), its clone's remote pointed at the copied upstream."""
        template = _template()
        base.mkdir(parents=True, exist_ok=True)
        shutil.copytree(template, base, symlinks=True, dirs_exist_ok=True)
        config = base / "upstream-work" / ".git" / "config"
        config.write_text(config.read_text().replace(str(template), str(base)))
        return cls(base, base / "upstream.git", base / "upstream-work", base / "origin.git")

    @classmethod
    def init(cls, base: Path) -> GitRepos:
        base.mkdir(parents=True, exist_ok=True)
        upstream, work, origin = base / "upstream.git", base / "upstream-work", base / "origin.git"
        git("init", "--bare", "-b", "main", str(upstream))
        git("init", "--bare", "-b", "main", str(origin))
        git("init", "-b", "main", str(work))
        git("remote", "add", "origin", str(upstream), cwd=work)
        return cls(base, upstream, work, origin)

    # --- upstream side -----------------------------------------------------------------
    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        for rel, text in (files or {message.replace(" ", "_") + ".txt": message}).items():
            p = self.work / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            git("add", rel, cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(
        self, name: str, ref: str = "HEAD", *, annotated: bool = True, force: bool = False
    ) -> str:
        args = ["tag"]
        if force:
            args.append("-f")
        if annotated:
            args += ["-a", "-m", f"release {name}"]
        git(*args, "--", name, ref, cwd=self.work)
        return git("rev-parse", f"refs/tags/{name}", cwd=self.work)

    def release(self, version: str, message: str | None = None) -> str:
        """Commit and tag a release `@moonshot-ai/kimi-code@VERSION`; returns the tag object."""
        self.commit(message or f"release {version}", {"VERSION": version})
        return self.tag(TAG.format(version))

    def push(self, *refs: str, force: bool = False) -> None:
        args = ["push", "-q"] + (["--force"] if force else []) + ["origin"]
        git(*args, *(refs or ("refs/heads/main",)), cwd=self.work)

    def push_all(self, force: bool = False) -> None:
        self.push("refs/heads/main", force=force)
        git("push", "-q", *(["--force"] if force else []), "origin", "--tags", cwd=self.work)

    def delete_upstream_tag(self, name: str) -> None:
        git("push", "-q", "origin", f":refs/tags/{name}", cwd=self.work)

    # --- inspection ----------------------------------------------------------------------
    @staticmethod
    def refs(bare: Path) -> dict[str, str]:
        out = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=bare)
        return dict(line.split(" ", 1) for line in out.splitlines() if line)  # type: ignore[misc]

    def origin_refs(self) -> dict[str, str]:
        return self.refs(self.origin)

    def install_hook(self, repo: Path, name: str, script: str) -> None:
        hook = repo / "hooks" / name
        hook.parent.mkdir(exist_ok=True)  # a repository made without a template has none
        hook.write_text("#!/bin/sh\n" + script)
        hook.chmod(0o755)


def seed(repos: GitRepos, *versions: str) -> dict[str, str]:
    """An upstream with a first commit and one release per version, pushed; tag objects."""
    repos.commit("initial", {"README.md": "upstream\n"})
    objects = {v: repos.release(v) for v in versions}
    repos.push_all()
    return objects
