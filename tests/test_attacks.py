"""Attacks A-H on the publisher, each run for real: a hostile variant of the sample (its build
script edited in a copy of the generator's output) built in the real bubblewrap sandbox, or a
hostile tarball handed to the upload. Each asserts that the secret does not leak or the attack
fails, and that the hostile code did run (so the test can fail)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sdkmirror.core import config
from sdkmirror.core.config import ToolchainSpec
from sdkmirror.core.errors import MirrorError
from sdkmirror.devtools import sample
from sdkmirror.infra import npm_registry, plainfiles, pristine, sandbox, toolchain
from sdkmirror.release.publish import pipeline as publish
from sdkmirror.release.publish import upload as publish_upload
from sdkmirror.smoke import build as smoke

SECRET = "hostile-test-secret-7f3a"
NPM_NAME = "@botiverse/kimi-code-sdk"


def hostile_tree(tmp_path: Path, sample_upstream: Any, js: str) -> tuple[Path, config.Config]:
    """The sample's newest release exported, with `js` run first by the SDK's build script."""
    up = sample_upstream(tmp_path / "upstream.git")
    src = tmp_path / "src"
    smoke.materialize(up.url, "main", src)
    build_mjs = src / sample.SDK_DIR / "build.mjs"
    prelude = 'import * as hfs from "node:fs";\nimport * as hcp from "node:child_process";\n'
    build_mjs.write_text(prelude + "{\n" + js + "\n}\n" + build_mjs.read_text())
    cfg = config.from_mapping(
        {"upstream": up.url, "work_dir": str(tmp_path / "state")}, root=tmp_path
    )
    return src, cfg


def report(src: Path) -> dict[str, Any]:
    """What the hostile code wrote next to the build script: proof that it ran."""
    data: dict[str, Any] = json.loads((src / sample.SDK_DIR / "leak.json").read_text())
    return data


WRITE_REPORT = 'hfs.writeFileSync(new URL("./leak.json", import.meta.url), JSON.stringify(out));'


@pytest.mark.slow
def test_a_the_build_reads_no_ancestor_environment_and_no_user_npmrc(
    tmp_path: Path, sample_upstream, toolchain_primary, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "maintainer"
    home.mkdir()
    (home / ".npmrc").write_text(f"//registry.invalid/:_authToken={SECRET}-npmrc\n")
    for key in ("NODE_AUTH_TOKEN", "GITHUB_TOKEN", "SDKMIRROR_PUSH_TOKEN"):
        monkeypatch.setenv(key, f"{SECRET}-{key}")
    monkeypatch.setenv("HOME", str(home))
    js = f"""
    const out = {{ pids: [], found: [] }};
    for (const pid of hfs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {{
      out.pids.push(pid);
      try {{ out.found.push(hfs.readFileSync(`/proc/${{pid}}/environ`, "latin1")); }} catch {{}}
    }}
    for (const f of [{json.dumps(str(home / ".npmrc"))}, "/root/.npmrc"]) {{
      try {{ out.found.push(hfs.readFileSync(f, "utf8")); }} catch {{}}
    }}
    {WRITE_REPORT}
    """
    src, cfg = hostile_tree(tmp_path, sample_upstream, js)
    outcome = smoke.build(src, toolchain_primary, cfg)
    assert outcome.ok, outcome.log
    leak = report(src)
    assert leak["pids"], "the hostile code did not run"
    assert SECRET not in json.dumps(leak)
    # Its own pid namespace: only the sandbox's few processes, none of ours.
    assert str(os.getpid()) not in leak["pids"] or len(leak["pids"]) < 10


@pytest.mark.slow
def test_b_the_build_cannot_rewrite_the_toolchain_or_the_credentialed_npm(
    tmp_path: Path, sample_upstream
) -> None:
    cache = tmp_path / "cache"  # private: a successful attack must not spoil the shared cache
    tc = toolchain.provision(ToolchainSpec("24.19.0", "10.33.0"), cache)
    clean = pristine.verified(cache)
    targets = [tc.npm.resolve(), tc.pnpm.resolve(), clean.npm_cli, clean.node]
    before = {t: hashlib.sha256(t.read_bytes()).hexdigest() for t in targets}
    js = f"""
    const out = {{ tried: [] }};
    for (const f of {json.dumps([str(t) for t in targets])}) {{
      try {{ hfs.appendFileSync(f, "\\n// pwned\\n"); out.tried.push([f, "written"]); }}
      catch (e) {{ out.tried.push([f, e.code]); }}
    }}
    {WRITE_REPORT}
    """
    src, cfg = hostile_tree(tmp_path, sample_upstream, js)
    assert smoke.build(src, tc, cfg).ok
    tried = report(src)["tried"]
    assert len(tried) == len(targets) and all(code != "written" for _, code in tried), tried
    assert {t: hashlib.sha256(t.read_bytes()).hexdigest() for t in targets} == before
    pristine.verified(cache)  # still the bytes recorded at install time
    # Had anything changed them (a run with --no-sandbox), no credentialed call would run.
    with clean.npm_cli.open("a") as fh:
        fh.write("\n// changed\n")
    with pytest.raises(MirrorError, match="changed since it was installed"):
        pristine.verified(cache)


@pytest.mark.slow
def test_c_no_npmrc_reaches_the_checkout_and_credentialed_npm_reads_none(
    tmp_path: Path, sample_upstream, toolchain, registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "tooling-checkout"
    checkout.mkdir()
    monkeypatch.chdir(checkout)
    planted = (
        "@botiverse:registry=http://127.0.0.1:1/\n//127.0.0.1:1/:_authToken=${NODE_AUTH_TOKEN}\n"
    )
    js = f"""
    const out = {{ cwds: [], wrote: [] }};
    const dirs = [{json.dumps(str(checkout))}];
    for (const pid of hfs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {{
      try {{ dirs.push(hfs.readlinkSync(`/proc/${{pid}}/cwd`)); }} catch {{}}
    }}
    for (const d of dirs) {{
      out.cwds.push(d);
      try {{ hfs.writeFileSync(`${{d}}/.npmrc`, {json.dumps(planted)}); out.wrote.push(d); }}
      catch {{}}
    }}
    {WRITE_REPORT}
    """
    src, cfg = hostile_tree(tmp_path, sample_upstream, js)
    assert smoke.build(src, toolchain, cfg).ok
    leak = report(src)
    assert leak["cwds"], "the hostile code did not run"
    assert str(checkout) not in leak["wrote"]
    assert not (checkout / ".npmrc").exists()
    # Even a planted one (a build run with --no-sandbox) is not read by a credentialed call:
    # the scoped route would send it to a closed port; it goes to the registry it names.
    (checkout / ".npmrc").write_text(planted)
    assert npm_registry.dist_tags(NPM_NAME, registry.url) == {}


def test_d_no_step_of_ours_runs_after_the_upstream_build_in_ci() -> None:
    """The checkout the build ran in is never run from again (also `test_workflows`)."""
    import yaml

    path = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "publish-sdk.yml"
    steps = yaml.safe_load(path.read_text())["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in steps]
    at = next(i for i, r in enumerate(runs) if r.startswith("invoke publish.build "))
    assert at < len(steps) - 1 and not any(runs[at + 1 :])


@pytest.mark.slow
def test_d_the_build_cannot_rewrite_the_tooling_checkout(
    tmp_path: Path, sample_upstream, toolchain_primary, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "tooling-checkout"
    checkout.mkdir()
    tasks = checkout / "tasks.py"
    tasks.write_text("# our tasks\n")
    monkeypatch.chdir(checkout)
    js = f"""
    const out = {{}};
    try {{ hfs.writeFileSync({json.dumps(str(tasks))}, "pwned"); out.result = "written"; }}
    catch (e) {{ out.result = e.code; }}
    {WRITE_REPORT}
    """
    src, cfg = hostile_tree(tmp_path, sample_upstream, js)
    assert smoke.build(src, toolchain_primary, cfg).ok
    assert report(src)["result"] in ("ENOENT", "EROFS", "EACCES")
    assert tasks.read_text() == "# our tasks\n"


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_e_nothing_the_build_starts_outlives_it(
    tmp_path: Path, sample_upstream, toolchain_primary
) -> None:
    marker = f"sdkmirror-daemon-{os.getpid()}-{tmp_path.name}"
    js = f"""
    const daemon = `${{process.execPath}} -e 'setTimeout(() => {{}}, 60000)' {marker}`;
    hcp.spawn("/bin/sh", ["-c", `${{daemon}} >/dev/null 2>&1 &`], {{
      detached: true, stdio: "ignore",
    }}).unref();
    const out = {{ started: true }};
    {WRITE_REPORT}
    """
    src, cfg = hostile_tree(tmp_path, sample_upstream, js)
    assert smoke.build(src, toolchain_primary, cfg).ok
    assert report(src)["started"]
    survivors = _processes_with(marker)
    for pid in survivors:  # only the daemons this test's build started
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


# --- F, G: the upload trusts only the bytes --------------------------------------------------


def package_tgz(path: Path, pkg: dict[str, Any], extra: dict[str, bytes] | None = None) -> Path:
    """A tarball as `npm pack` lays it out, from `pkg` and a tiny dist."""
    files = {
        "package/package.json": json.dumps(pkg).encode(),
        "package/LICENSE": b"MIT\n",
        "package/NOTICE.md": b"notice\n",
        "package/README.md": b"readme\n",
        "package/dist/index.mjs": b"export const x = 1;\n",
        **(extra or {}),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 499162500
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


def good_pkg(version: str = "0.9.3") -> dict[str, Any]:
    return {
        "name": NPM_NAME,
        "version": version,
        "type": "module",
        "exports": {".": "./dist/index.mjs"},
        "files": ["dist", "LICENSE", "NOTICE.md", "README.md"],
        "publishConfig": {"access": "public"},
    }


EXPECTED = publish_upload.Expected(NPM_NAME, "0.9.3")


@pytest.mark.parametrize(
    ("check", "change"),
    [
        ("name", {"name": "@botiverse/not-the-sdk"}),
        ("version", {"version": "6.6.6"}),
        ("lifecycle scripts", {"scripts": {"postinstall": "node steal.js"}}),
        ("bin", {"bin": {"sdk": "dist/index.mjs"}}),
        ("package.json allow-list", {"funding": "x"}),
        ("files", {"files": ["LICENSE"]}),
    ],
)
def test_f_the_upload_refuses_what_the_bytes_say(tmp_path: Path, check: str, change: dict) -> None:
    tgz = package_tgz(tmp_path / "p.tgz", {**good_pkg(), **change})
    with publish_upload.private_copy(tgz) as copy, pytest.raises(MirrorError) as info:
        publish_upload.check_bytes(copy, EXPECTED)
    assert info.value.exit_code == 7
    assert f"upload check `{check}` failed" in str(info.value)
    assert "\n" not in str(info.value) and "nothing uploaded" in str(info.value)


def test_f_links_devices_and_sizes_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("package/dist/env")
        link.type, link.linkname = tarfile.SYMTYPE, "/proc/self/environ"
        tar.addfile(link)
    (tmp_path / "link.tgz").write_bytes(buf.getvalue())
    refused = pytest.raises(MirrorError, match=r"upload check `contents` failed.*symlink")
    with publish_upload.private_copy(tmp_path / "link.tgz") as copy, refused:
        publish_upload.check_bytes(copy, EXPECTED)
    big = package_tgz(tmp_path / "big.tgz", good_pkg(), {"package/dist/big.mjs": b"x" * 4096})
    with publish_upload.private_copy(big) as copy:
        small = publish_upload.Expected(NPM_NAME, "0.9.3", max_unpacked=1024)
        with pytest.raises(MirrorError, match="upload check `size` failed"):
            publish_upload.check_bytes(copy, small)
    fifo = tmp_path / "fifo.tgz"
    os.mkfifo(fifo)
    with pytest.raises(MirrorError) as info, publish_upload.private_copy(fifo):
        pass
    assert info.value.exit_code in (2, 7)


def test_f_the_private_copy_is_0700_and_gone_afterwards(tmp_path: Path) -> None:
    tgz = package_tgz(tmp_path / "p.tgz", good_pkg())
    with publish_upload.private_copy(tgz) as copy:
        assert copy.parent.stat().st_mode & 0o777 == 0o700
        assert copy.read_bytes() == tgz.read_bytes()
        assert publish_upload.check_bytes(copy, EXPECTED)["name"] == NPM_NAME
    assert not copy.parent.exists()


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.mark.slow
def test_g_the_bytes_checked_are_the_bytes_uploaded(tmp_path: Path, toolchain, registry) -> None:
    tgz = package_tgz(tmp_path / "sdk.tgz", good_pkg())
    checked = tgz.read_bytes()
    swapped = package_tgz(tmp_path / "other.tgz", good_pkg(), {"package/dist/evil.mjs": b"1"})

    def swap() -> None:  # after every check, before `npm publish`
        tgz.write_bytes(swapped.read_bytes())

    result = publish_upload.upload(
        toolchain,
        tgz,
        _sri(checked),
        expected=EXPECTED,
        registry=registry.url,
        dist_tag="latest",
        dry_run=False,
        before_upload=swap,
    )
    assert result.published and result.integrity == _sri(checked)
    assert publish.registry_integrity(NPM_NAME, "0.9.3", registry.url) == _sri(checked)


@pytest.mark.slow
def test_f_a_hostile_tarball_uploads_nothing(tmp_path: Path, toolchain, registry) -> None:
    pkg = {**good_pkg("6.6.6"), "name": "@botiverse/not-the-sdk", "bin": {"x": "dist/index.mjs"}}
    pkg["scripts"] = {"postinstall": "node dist/index.mjs"}
    tgz = package_tgz(tmp_path / "evil.tgz", pkg)
    with pytest.raises(MirrorError, match="upload check `name` failed") as info:
        publish_upload.upload(
            toolchain, tgz, _sri(tgz.read_bytes()), expected=EXPECTED, registry=registry.url,
            dry_run=False,
        )  # fmt: skip
    assert info.value.exit_code == 7
    for name, version in ((NPM_NAME, "0.9.3"), ("@botiverse/not-the-sdk", "6.6.6")):
        assert publish.registry_integrity(name, version, registry.url) is None


# --- H: walks over dist/ are iterative and bounded -------------------------------------------


def test_h_a_1500_deep_dist_is_one_clear_refusal(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    levels = [dist]
    for _ in range(1500):  # one level at a time: pathlib's parents=True would recurse
        levels.append(levels[-1] / "d")
    for level in levels:
        level.mkdir()
    (levels[-1] / "x.mjs").write_text("export {};\n")
    try:
        with pytest.raises(plainfiles.UnsafeFile, match="nested deeper than") as info:
            plainfiles.copy_tree(dist, tmp_path / "copy")
        assert info.value.exit_code == 7 and "\n" not in str(info.value)
        assert not (tmp_path / "copy").exists()
    finally:  # bottom-up, so that no recursive remover (pytest's own) meets this tree
        (levels[-1] / "x.mjs").unlink()
        for level in reversed(levels):
            level.rmdir()


# --- no sandbox, no build --------------------------------------------------------------------


def test_without_bwrap_the_upstream_steps_refuse_with_exit_9(project, tmp_path: Path) -> None:
    bin_dir = tmp_path / "no-bwrap-bin"  # git, but no bwrap
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    env = {"PATH": str(bin_dir)}
    tag = sample.TAG.format("0.14.2")
    for args in (
        ["publish.build", "--out", "x", "--source-tag", tag],
        ["release.notes", sample.TAG.format("0.14.2"), sample.TAG.format("0.14.3")],
    ):
        cp = project.invoke(*args, env=env)
        assert cp.returncode == 9, (args, cp.stderr)
        [line] = cp.stderr.strip().splitlines()
        assert line.startswith("error: bubblewrap (bwrap) is not installed")
        assert "apt-get install -y bubblewrap" in line and "--no-sandbox" in line


def test_no_sandbox_still_refuses_while_credentials_are_reachable(project, tmp_path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / ".npmrc").write_text("//registry.invalid/:_authToken=abc\n")
    env = {"NODE_AUTH_TOKEN": "x", "HOME": str(home), "NPM_CONFIG_USERCONFIG": ""}
    cp = project.invoke("publish.build", "--out", "x", "--source-tag", "t", "--no-sandbox", env=env)
    assert cp.returncode == 9, cp.stderr
    [line] = cp.stderr.strip().splitlines()
    assert "$NODE_AUTH_TOKEN" in line and f"{home / '.npmrc'} (//registry.invalid/:_authtoken)" in (
        line
    )
    assert "abc" not in line and "x;" not in line


def test_the_profile_is_printable_and_versioned(tmp_path: Path) -> None:
    prof = sandbox.profile(
        network=False, writable=[tmp_path], readonly=[Path("/usr")], home=tmp_path / "h",
        cwd=tmp_path,
    )  # fmt: skip
    argv = sandbox.argv(prof, ["true"])
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-net", "--die-with-parent"):
        assert flag in argv
    assert ["--bind", str(tmp_path), str(tmp_path)] == argv[argv.index("--bind") :][:3]
    assert sandbox.PROFILE_VERSION in prof.describe() and "no network" in prof.describe()
    online = sandbox.profile(network=True, writable=[], readonly=[], home=tmp_path, cwd=tmp_path)
    assert "--unshare-net" not in sandbox.argv(online, ["true"])


def test_doctor_says_whether_bwrap_works_and_why_not(tmp_path: Path, monkeypatch) -> None:
    from sdkmirror.ops import doctor

    sandbox.problem.cache_clear()
    try:
        assert doctor.sandbox_check().state == doctor.OK  # this machine has a working bwrap
        monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
        sandbox.problem.cache_clear()
        check = doctor.sandbox_check()
        assert check.state == doctor.DEVIATES and "not installed" in check.detail
        assert "apt-get install -y bubblewrap" in check.fix
    finally:
        sandbox.problem.cache_clear()
