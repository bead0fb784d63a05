"""The build cache: its key (git ids of the build's inputs), its entries (manifest last, checked
on every use), LRU eviction, prune plans and concurrent writers. No toolchain needed."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from sdkmirror.devtools import sample
from sdkmirror.smoke import build_cache, build_key
from sdkmirror.smoke.build_cache import BuildCache, CacheMiss

SDK = "packages/node-sdk"


def _git(cwd: Path, *args: str) -> str:
    """git on the work tree `cwd` with its repository beside it, not inside it."""
    env = {**os.environ, "GIT_DIR": str(cwd.parent / "repo.git"), "GIT_WORK_TREE": str(cwd)}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _key(tree: Path, **kw: object) -> build_key.BuildKey:
    args: dict[str, object] = {
        "sdk_dir": SDK,
        "sdk_package": "@moonshot-ai/kimi-code-sdk",
        "toolchain": {"node": "v24.19.0", "pnpm": "10.33.0"},
    }
    args.update(kw)
    return build_key.compute(tree, **args)  # type: ignore[arg-type]


# --- the key ----------------------------------------------------------------------------------


def test_git_ids_are_the_ones_git_computes(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "deep.txt").write_text("deep\n")
    (tree / "a" / "x.sh").write_text("#!/bin/sh\n")
    (tree / "a" / "x.sh").chmod(0o755)
    (tree / "a-b").write_text("sorts between a and a/ \n")
    (tree / "a.c").write_bytes(b"\x00\xff binary")
    (tree / "link").symlink_to("a/x.sh")
    (tree / "empty").mkdir()  # git keeps no empty directory
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "-A")
    assert build_key.git_id(tree) == _git(tree, "write-tree")
    assert build_key.git_id(tree / "a") == _git(tree, "rev-parse", f"{_git(tree, 'write-tree')}:a")
    assert build_key.git_id(tree / "a.c") == _git(tree, "hash-object", "a.c")
    assert build_key.git_id(tree / "empty") is None
    assert build_key.git_id(tree / "missing") is None


def test_the_closure_follows_workspace_dependencies(tmp_path: Path) -> None:
    sample.write_tree(tmp_path)
    paths = build_key.build_input_paths(tmp_path, SDK)
    assert paths == [
        ".npmrc",
        ".nvmrc",
        "package.json",
        "packages/agent-core",  # a devDependency of the SDK
        "packages/kaos",  # reached through agent-core too
        "packages/node-sdk",
        "packages/protocol",
        "packages/transport-types",
        "pnpm-lock.yaml",
        "pnpm-workspace.yaml",
    ]
    assert "apps/kimi-cli" not in paths  # a workspace package the SDK does not depend on


def test_the_key_moves_with_the_build_inputs_only(tmp_path: Path) -> None:
    sample.write_tree(tmp_path)
    first = _key(tmp_path)
    assert _key(tmp_path) == first  # deterministic
    (tmp_path / "README.md").write_text("not read by the build\n")
    (tmp_path / "apps" / "kimi-cli" / "src" / "cli.js").write_text("// elsewhere\n")
    assert _key(tmp_path).digest == first.digest
    (tmp_path / "tsconfig.base.json").write_text("{}\n")  # a root config file appears
    with_tsconfig = _key(tmp_path)
    assert with_tsconfig.digest != first.digest
    (tmp_path / "packages" / "kaos" / "src" / "index.js").write_text("export const k = 2;\n")
    assert _key(tmp_path).digest != with_tsconfig.digest  # a transitive sibling
    moved = _key(tmp_path)
    for other in (
        {"toolchain": {"node": "v24.15.0", "pnpm": "10.33.0"}},
        {"profile": "bwrap-2"},
        {"stage": "release"},
        {"extra": {"rollup": "4"}},
    ):
        assert _key(tmp_path, **other).digest != moved.digest, other
    assert moved.inputs["sandbox_profile"] == build_key.SANDBOX_PROFILE


# --- entries ----------------------------------------------------------------------------------


def _outputs(where: Path, text: str = "export const a = 1;\n") -> dict[str, Path]:
    dist = where / "dist"
    (dist / "chunks").mkdir(parents=True, exist_ok=True)
    (dist / "index.mjs").write_text(text)
    (dist / "chunks" / "c.mjs").write_text("export {};\n")
    (where / "package.json").write_text('{"name": "x", "version": "1.0.0"}\n')
    return {"dist": dist, "package.json": where / "package.json"}


def _fake_key(name: str) -> build_key.BuildKey:
    digest = build_key.hashlib.sha256(name.encode()).hexdigest()
    return build_key.BuildKey(digest, {"stage": "build", "toolchain": {"node": "v1", "pnpm": "2"}})


def test_store_then_restore_gives_the_same_files(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache", 1 << 30)
    key = _fake_key("one")
    assert cache.lookup(key) is None
    stored = cache.store(key, _outputs(tmp_path / "built"), label="x@1.0.0 (build)")
    assert stored is not None
    assert sorted(stored.files) == ["dist/chunks/c.mjs", "dist/index.mjs", "package.json"]
    entry = cache.lookup(key)
    assert entry is not None and entry.manifest["label"] == "x@1.0.0 (build)"
    cache.restore(entry, "dist", tmp_path / "out" / "dist")
    cache.restore(entry, "package.json", tmp_path / "out" / "package.json")
    assert (tmp_path / "out" / "dist" / "index.mjs").read_text() == "export const a = 1;\n"
    assert (tmp_path / "out" / "dist" / "chunks" / "c.mjs").is_file()
    assert json.loads((tmp_path / "out" / "package.json").read_text())["version"] == "1.0.0"
    assert not list((tmp_path / "cache" / "staging").iterdir())  # nothing left half-written


def test_an_entry_without_its_manifest_is_partial_and_removed(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache", 1 << 30)
    key = _fake_key("partial")
    entry = cache.store(key, _outputs(tmp_path / "built"), label="x")
    assert entry is not None
    (entry.path / build_cache.MANIFEST).unlink()  # as if the run died before writing it
    assert cache.lookup(key) is None
    assert not entry.path.exists()


@pytest.mark.parametrize("damage", ["same-size-bytes", "truncated", "extra-file", "link"])
def test_a_corrupt_entry_is_never_used(tmp_path: Path, damage: str) -> None:
    cache = BuildCache(tmp_path / "cache", 1 << 30)
    key = _fake_key(damage)
    entry = cache.store(key, _outputs(tmp_path / "built"), label="x")
    assert entry is not None
    index = entry.path / "files" / "dist" / "index.mjs"
    if damage == "same-size-bytes":  # only the hash can tell
        index.write_text("export const b = 1;\n")
    elif damage == "truncated":
        index.write_text("export")
    elif damage == "extra-file":
        (entry.path / "files" / "dist" / "planted.mjs").write_text("evil()\n")
    else:
        index.unlink()
        index.symlink_to("/etc/passwd")
    found = cache.lookup(key)
    if found is not None:  # only the copy's hash shows a same-size change
        out = tmp_path / "out" / "dist"
        with pytest.raises(CacheMiss):
            cache.restore(found, "dist", out)
        assert not out.exists()  # the bad copy is gone too
    assert not entry.path.exists()
    assert cache.lookup(key) is None


def test_outputs_with_links_or_over_budget_are_not_stored(tmp_path: Path) -> None:
    outputs = _outputs(tmp_path / "built")
    (outputs["dist"] / "alias.mjs").symlink_to("index.mjs")
    cache = BuildCache(tmp_path / "cache", 1 << 30)
    assert cache.store(_fake_key("links"), outputs, label="x") is None
    (outputs["dist"] / "alias.mjs").unlink()
    small = BuildCache(tmp_path / "small", 10)
    assert small.store(_fake_key("big"), outputs, label="x") is None
    assert small.listing() == []


def _age(entry_path: Path, when: float) -> None:
    os.utime(entry_path / build_cache.USED, (when, when))


def test_least_recently_used_entries_are_evicted_first(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache", 1 << 30)
    entries = {}
    for n, name in enumerate(["old", "middle", "new"]):
        entries[name] = cache.store(_fake_key(name), _outputs(tmp_path / name), label=name)
        assert entries[name] is not None
        _age(entries[name].path, 1_000_000 + n * 1000)
    size = entries["old"].size
    # `middle` is used again: now `old`, then `new`, are the least recently used.
    assert cache.lookup(_fake_key("middle")) is not None
    cache.touch(entries["middle"])
    _age(entries["new"].path, 1_000_500)
    budget = BuildCache(tmp_path / "cache", 2 * size + 1)
    fourth = budget.store(_fake_key("fourth"), _outputs(tmp_path / "fourth"), label="fourth")
    assert fourth is not None
    left = {e.entry.manifest["label"] for e in budget.listing() if e.entry}
    assert left == {"middle", "fourth"}


def test_prune_plans_first_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache", 1 << 30)
    good = cache.store(_fake_key("good"), _outputs(tmp_path / "good"), label="good")
    bad = cache.store(_fake_key("bad"), _outputs(tmp_path / "bad"), label="bad")
    assert good is not None and bad is not None
    (bad.path / build_cache.MANIFEST).write_text("{not json")
    stale = tmp_path / "cache" / "staging" / f"{'f' * 64}.999999999.abcd1234"
    stale.mkdir(parents=True)
    plan = cache.plan_prune()
    assert [(i.key, why.split(":")[0]) for i, why in plan.remove] == [
        (bad.key, "partial or corrupt")
    ]
    assert plan.leftovers == [stale]
    assert plan.kept == 1
    assert bad.path.exists() and stale.exists()  # planning changes nothing
    cache.prune(plan)
    assert not bad.path.exists() and not stale.exists() and good.path.exists()
    everything = cache.plan_prune(everything=True)
    assert [i.key for i, _ in everything.remove] == [good.key]
    assert cache.plan_prune(0).remove[0][0].key == good.key  # a budget of 0 keeps nothing


def _writer(args: tuple[str, str, str]) -> bool:
    """One run: build under the key's lock unless the entry is there. True if it built."""
    root, name, log = args
    cache = BuildCache(Path(root), 1 << 30)
    key = _fake_key(name)
    with cache.hold(key):
        if cache.lookup(key) is not None:
            return False
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        where = Path(root).parent / f"src-{os.getpid()}"
        cache.store(key, _outputs(where, "export const built = 1;\n"), label=name)
        return True


def test_concurrent_runs_on_one_key_build_it_once(tmp_path: Path) -> None:
    root, log = tmp_path / "cache", tmp_path / "builds.log"
    with ProcessPoolExecutor(max_workers=4) as pool:
        built = list(pool.map(_writer, [(str(root), "shared", str(log))] * 8))
    assert built.count(True) == 1
    assert len(log.read_text().splitlines()) == 1
    cache = BuildCache(root, 1 << 30)
    entry = cache.lookup(_fake_key("shared"))
    assert entry is not None
    cache.restore(entry, "dist", tmp_path / "out")
    assert (tmp_path / "out" / "index.mjs").read_text() == "export const built = 1;\n"


def test_a_size_of_zero_turns_the_cache_off(tmp_path: Path) -> None:
    from sdkmirror.core import config

    on = config.from_mapping({}, root=tmp_path)
    assert on.build_cache_max_bytes == 4 * 1024**3
    assert build_cache.for_config(on) is not None
    off = config.from_mapping({"build_cache_max_bytes": 0}, root=tmp_path)
    assert build_cache.for_config(off) is None
    with pytest.raises(config.ConfigError, match="build_cache_max_bytes"):
        config.from_mapping({"build_cache_max_bytes": "4GB"}, root=tmp_path)


# --- the tasks --------------------------------------------------------------------------------


def test_cache_list_and_prune_tasks(project, own_build_cache: Path) -> None:
    cache = BuildCache(own_build_cache, 1 << 30)
    entry = cache.store(_fake_key("listed"), _outputs(project.root / "b"), label="x@1.0.0 (build)")
    assert entry is not None
    listed = project.invoke("cache.list", "--json", check=True)
    doc = json.loads(listed.stdout)
    assert [e["key"] for e in doc["entries"]] == [entry.key]
    assert doc["entries"][0]["label"] == "x@1.0.0 (build)" and doc["entries"][0]["ok"]
    table = project.invoke("cache.list", check=True)
    assert entry.key[:16] in table.stdout and "x@1.0.0 (build)" in table.stdout
    verdict = own_build_cache / "verdicts" / f"{'0' * 64}.json"  # a remembered check pass
    verdict.parent.mkdir()
    verdict.write_text("{}")
    dry = project.invoke("cache.prune", "--all", "--dry-run", check=True)
    assert entry.key[:16] in dry.stdout and entry.path.exists() and verdict.exists()
    bad = project.invoke("cache.prune", "--max-bytes", "lots")
    assert bad.returncode == 2 and bad.stderr.count("error:") == 1
    project.invoke("cache.prune")
    assert verdict.exists()  # only `--all` forgets the verdicts
    project.invoke("cache.prune", "--all", check=True)
    assert not entry.path.exists() and not verdict.exists()


# --- real builds ------------------------------------------------------------------------------


def _smoke_cfg(tmp_path: Path, upstream: str):
    from sdkmirror.core import config

    return config.from_mapping(
        {"upstream": upstream, "work_dir": str(tmp_path / "state")}, root=tmp_path
    )


def _digests(dist: Path) -> dict[str, str]:
    return {
        p.relative_to(dist).as_posix(): build_key.hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(dist.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_smoke_builds_a_tree_once_and_rebuilds_a_corrupt_entry(
    tmp_path: Path, sample_upstream, toolchain_primary
) -> None:
    from sdkmirror.core.config import ToolchainSpec
    from sdkmirror.smoke import build as smoke

    up = sample_upstream(tmp_path / "upstream.git")
    cfg = _smoke_cfg(tmp_path, up.url)
    spec = ToolchainSpec("24.19.0", "10.33.0")

    def run() -> dict:
        return smoke.run_smoke(cfg, spec, ref="main", report_dir=tmp_path / "r").entry

    first = run()
    assert (first["status"], first["cache"]) == ("pass", "miss"), first["log_tail"]
    assert first["durations"]["install"] > 0 and first["durations"]["build"] > 0
    second = run()
    assert (second["status"], second["cache"]) == ("pass", "hit")
    assert second["durations"]["install"] is None and second["durations"]["build"] is None
    assert second["reason"] == first["reason"].replace("built;", "cached build;")

    cache = build_cache.for_config(cfg)
    assert cache is not None
    [listed] = cache.listing()
    assert listed.entry is not None and listed.entry.meta["exports"]
    index = listed.path / "files" / "dist" / "index.mjs"
    text = index.read_text()
    index.write_text(text.replace("KimiClient", "KimiClienT"))  # same size, other bytes
    third = run()
    assert (third["status"], third["cache"]) == ("pass", "miss")  # rebuilt, never used
    [again] = cache.listing()
    assert again.entry is not None and index.read_text() == text


@pytest.mark.slow
def test_release_builds_reuse_the_smoke_build_then_their_own(
    tmp_path: Path, sample_upstream, toolchain_primary, npm_tools, capsys
) -> None:
    from datetime import UTC, datetime

    from sdkmirror.core.config import ToolchainSpec
    from sdkmirror.mirror.ledger import TagRecord
    from sdkmirror.release.publish import build as publish_build
    from sdkmirror.smoke import build as smoke

    up = sample_upstream(tmp_path / "upstream.git")
    cfg = _smoke_cfg(tmp_path, up.url)
    tag = up.tag("0.14.2")
    commit = _git_commit(up.bare, tag)
    record = TagRecord(tag, up.tags[tag], commit, datetime.now(UTC))
    smoke.run_smoke(cfg, ToolchainSpec("24.19.0", "10.33.0"), ref=tag, report_dir=tmp_path / "r")
    capsys.readouterr()

    first = publish_build.build_tag(cfg, record, up.url, tmp_path / "one")
    err = capsys.readouterr().err
    assert "build cache hit" in err and "pnpm install" in err  # installed for the bundling
    assert "pnpm build" not in err  # the smoke build's dist/ was reused
    second = publish_build.build_tag(cfg, record, up.url, tmp_path / "two")
    err = capsys.readouterr().err
    assert "build cache hit" in err and "pnpm install" not in err
    assert not (second.source_dir / "node_modules").exists()
    assert _digests(second.dist_dir) == _digests(first.dist_dir)  # bundled declarations too
    cache = build_cache.for_config(cfg)
    assert cache is not None
    stages = sorted(e.entry.manifest["inputs"]["stage"] for e in cache.listing() if e.entry)
    assert stages == ["build", "release"]
    fresh = publish_build.build_tag(cfg, record, up.url, tmp_path / "three", use_cache=False)
    assert _digests(fresh.dist_dir) == _digests(first.dist_dir)  # what the cache holds is a build


def _git_commit(bare: Path, tag: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", f"{tag}^{{commit}}"], cwd=bare, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip


def test_a_restored_build_is_checked_and_never_touches_the_trees_package_json(
    tmp_path: Path,
) -> None:
    from sdkmirror.core import config
    from sdkmirror.smoke import build as smoke

    cfg = config.from_mapping({"work_dir": str(tmp_path / "state")}, root=tmp_path)
    pkg = {
        "name": "@moonshot-ai/kimi-code-sdk",
        "version": "0.9.3",
        "publishConfig": {"exports": {".": {"import": "./dist/index.mjs"}}},
    }
    built = tmp_path / "built"
    outputs = _outputs(built)
    (built / "package.json").write_text(json.dumps(pkg))
    cache = BuildCache(tmp_path / "cache", 1 << 30)
    key = _fake_key("restored")
    cache.store(key, outputs, label="sdk", meta={"exports": ["KimiClient"]})

    tree = tmp_path / "tree"
    sdk = tree / SDK
    sdk.mkdir(parents=True)
    (sdk / "package.json").write_text(json.dumps(pkg))
    outcome = smoke.restore(cache, key, tree, None, cfg)  # type: ignore[arg-type]
    assert outcome is not None and outcome.ok and outcome.cache == "hit"
    assert outcome.exports == ["KimiClient"]  # what the stored build's import check saw
    assert (sdk / "dist" / "index.mjs").read_text() == "export const a = 1;\n"

    # An entry whose package.json is not the tree's is not used, and the tree keeps its own.
    other = {**pkg, "version": "9.9.9"}
    (sdk / "package.json").write_text(json.dumps(other))
    assert smoke.restore(cache, key, tree, None, cfg) is None  # type: ignore[arg-type]
    assert json.loads((sdk / "package.json").read_text())["version"] == "9.9.9"
    assert not (sdk / "dist").exists()

    # Files the exports name must be there, as after a fresh build.
    missing = {**pkg, "publishConfig": {"exports": {".": {"import": "./dist/gone.mjs"}}}}
    (built / "package.json").write_text(json.dumps(missing))
    (sdk / "package.json").write_text(json.dumps(missing))
    key2 = _fake_key("missing-export")
    cache.store(key2, outputs, label="sdk", meta={"exports": ["KimiClient"]})
    failed = smoke.restore(cache, key2, tree, None, cfg)  # type: ignore[arg-type]
    assert failed is not None and not failed.ok and failed.category == "artifacts"
