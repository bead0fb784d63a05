"""Upstream code never sees a secret: the sandboxed environment, the separate registry
environment, registry URLs without credentials, and versions that are versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdkmirror.core import config as config_mod
from sdkmirror.core.errors import UsageError
from sdkmirror.devtools import sample
from sdkmirror.infra import npm_registry, registry_url, sandbox
from sdkmirror.release.publish import build as publish_build
from sdkmirror.smoke import build as smoke

SECRETS = {
    "SDKMIRROR_PUSH_TOKEN": "push-secret-1111",
    "GITHUB_TOKEN": "gh-secret-2222",
    "NODE_AUTH_TOKEN": "npm-secret-3333",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-secret-4444",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/oidc-secret-5555",
}


def user_env(tmp_path: Path) -> dict[str, str]:
    """A publisher's environment: tokens, a home with credentials, an npm user config."""
    home = tmp_path / "publisher-home"
    home.mkdir(exist_ok=True)
    npmrc = home / ".npmrc"
    npmrc.write_text(
        "registry=http://127.0.0.1:4873/\n"
        "//127.0.0.1:4873/:_authToken=npmrc-secret-6666\n"
        "_auth=bnBtcmMtc2VjcmV0\n"
        "cafile=/etc/ssl/certs/ca-certificates.crt\n"
    )
    return {
        **SECRETS,
        "HOME": str(home),
        "PATH": "/opt/elsewhere/bin:/usr/bin",
        "NODE_OPTIONS": "--require /tmp/evil.js",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "https_proxy": "http://proxy.invalid:3128",
        "NO_PROXY": "127.0.0.1",
        "CI": "true",
        "GITHUB_REPOSITORY": "owner/mirror",
        "GITHUB_ACTIONS": "true",
    }


def no_secret_in(text: str) -> None:
    for value in [*SECRETS.values(), "npmrc-secret-6666", "bnBtcmMtc2VjcmV0"]:
        assert value not in text


def test_sandbox_is_an_allow_list(tmp_path: Path) -> None:
    base = user_env(tmp_path)
    home = tmp_path / "fresh"
    env = sandbox.environment(base, bin_dirs=[tmp_path / "bin"], home=home)
    no_secret_in(json.dumps(env))
    assert env["PATH"].split(os.pathsep) == [str(tmp_path / "bin"), *sandbox.SYSTEM_DIRS]
    assert env["HOME"] == str(home) and env["npm_config_userconfig"] == str(home / ".npmrc")
    assert env["npm_config_registry"] == "http://127.0.0.1:4873/"  # the URL, not its token
    assert env["npm_config_cafile"] == "/etc/ssl/certs/ca-certificates.crt"
    assert (env["LANG"], env["LC_ALL"], env["CI"]) == ("C.UTF-8", "C.UTF-8", "true")
    assert (env["https_proxy"], env["NO_PROXY"]) == ("http://proxy.invalid:3128", "127.0.0.1")
    for key in ("NODE_OPTIONS", "GITHUB_REPOSITORY", "GITHUB_ACTIONS", "NODE_AUTH_TOKEN"):
        assert key not in env


def test_a_registry_url_with_credentials_in_the_npm_config_is_not_passed(tmp_path: Path) -> None:
    base = {"HOME": str(tmp_path), "npm_config_registry": "https://u:secret-7777@r.invalid/"}
    env = sandbox.environment(base, bin_dirs=[], home=tmp_path / "h")
    assert "npm_config_registry" not in env and "secret-7777" not in json.dumps(env)


def test_the_registry_environment_is_the_only_one_with_credentials(tmp_path: Path) -> None:
    base = user_env(tmp_path)
    private = tmp_path / "private"
    env = sandbox.registry_environment(base, bin_dirs=[tmp_path / "bin"], home=private)
    assert env["HOME"] == str(private)  # not the user's: no npmrc of a home is read
    assert not any(k.lower().startswith("npm_config_user") for k in env)
    assert env["NODE_AUTH_TOKEN"] == SECRETS["NODE_AUTH_TOKEN"]
    assert env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] == SECRETS["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    assert env["GITHUB_REPOSITORY"] == "owner/mirror"  # provenance names the workflow
    for key in ("SDKMIRROR_PUSH_TOKEN", "GITHUB_TOKEN", "NODE_OPTIONS"):
        assert key not in env
    # No compiled code from the shared temp dir: npm would otherwise load Node's compile cache
    # from it, where any process can plant one.
    assert env["NODE_DISABLE_COMPILE_CACHE"] == "1" and env["TMPDIR"] == str(private)


def test_credentials_go_to_npm_publish_file_only(tmp_path: Path) -> None:
    from sdkmirror.core.config import ToolchainSpec
    from sdkmirror.infra.toolchain import Toolchain

    tc = Toolchain(ToolchainSpec("24.19.0", "10.33.0"), tmp_path / "bin", "", "")
    nope = str(tmp_path / "nope")
    for args in (["install"], ["exec", "x"], ["view", "x"], ["publish"], ["publish", nope]):
        with pytest.raises(ValueError, match="credentials"):
            npm_registry.run(tc, args)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass-8888@127.0.0.1:4873/",
        "https://token-8888@registry.invalid/",
        "ftp://registry.invalid/",
        "http://registry.invalid/\nx",
        "http:///path",
        "-registry",
    ],
)
def test_registry_urls_are_refused_without_printing_credentials(url: str) -> None:
    with pytest.raises(UsageError, match=r"pass http\(s\)://host\[:port\]/\[path\]") as info:
        registry_url.parse(url)
    assert "8888" not in str(info.value) and "\n" not in str(info.value)
    assert "pass-8888" not in str(info.value)


def test_registry_urls_are_normalised() -> None:
    assert registry_url.parse("http://127.0.0.1:4873") == "http://127.0.0.1:4873/"
    assert registry_url.parse("https://r.invalid/npm/") == "https://r.invalid/npm/"


def test_registry_with_credentials_via_the_task_is_one_line(project) -> None:
    for args in (
        ["publish", "--source-tag", sample.TAG.format("0.14.2")],
        ["publish.build", "--out", "x", "--source-tag", sample.TAG.format("0.14.2")],
        ["publish.upload", "--tarball", "x.tgz", "--integrity", "sha512-x", "--source-tag", "t"],
        ["publish.check", "--version", "0.9.3"],
        ["publish.reproduce", "--version", "0.9.3"],
    ):
        cp = project.invoke(*args, "--registry", "http://user:s3cret-9999@127.0.0.1:4873/")
        assert cp.returncode == 2, (args, cp.stderr)
        lines = cp.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --registry"), cp.stderr
        assert "user information" in lines[0]
        assert "s3cret-9999" not in cp.stderr + cp.stdout


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--version-override", "0.9.51\n"),
        ("--version-override", "1\uff13.2.3"),  # a fullwidth digit
        ("--version-override", "01.2.3"),
        ("--expected-version", "0.9.3 "),
        ("--expected-version", "0.09.3"),
    ],
)
def test_hostile_versions_are_refused_before_anything_runs(project, flag, value) -> None:
    cp = project.invoke("publish", "--source-tag", sample.TAG.format("0.14.2"), flag, value)
    assert cp.returncode == 2, cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not an exact npm version" in lines[0], cp.stderr
    assert not (project.root / "state" / "publish").exists()
    assert not (project.root / "ledger").exists()


@pytest.mark.parametrize("value", ["0.9.3\n", "\uff10.9.3", "00.9.3", "v0.9.3"])
def test_hostile_versions_for_check_and_reproduce(project, value) -> None:
    for task in ("publish.check", "publish.reproduce"):
        cp = project.invoke(task, "--version", value)
        assert cp.returncode == 2, cp.stderr
        assert "is not an exact npm version" in cp.stderr and "Traceback" not in cp.stderr


@pytest.mark.parametrize("flag", ["--pnpm", "--node"])
def test_a_toolchain_version_is_never_a_path(project, flag: str) -> None:
    victim = project.root / "state" / "x"
    victim.mkdir(parents=True)
    (victim / "keep").write_text("precious")
    versions = {"--node": "24.19.0", "--pnpm": "10.33.0", flag: "/../../x"}
    cli = [sys.executable, "-m", "sdkmirror", "smoke", "--upstream", "/nonexistent"]
    cp = subprocess.run(
        [*cli, "--node", versions["--node"], "--pnpm", versions["--pnpm"]],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 2, cp.stderr
    assert f"{flag} '/../../x' is not an exact version" in cp.stderr
    assert (victim / "keep").read_text() == "precious"


# --- upstream code that tries to read the publisher's secrets -----------------------------

DUMP = """\
const fs = require("fs");
const os = require("os");
fs.writeFileSync({out} + "-" + process.argv[2] + ".json",
  JSON.stringify({{env: process.env, home: os.homedir(),
    npmrc: fs.existsSync(os.homedir() + "/.npmrc")}}));
"""


@pytest.mark.slow
def test_the_upstream_build_and_install_scripts_see_no_secret(
    tmp_path: Path, toolchain_primary, monkeypatch
) -> None:
    user = user_env(tmp_path)
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", user["HOME"])
    source = sample.write_tree(tmp_path / "source", sample.DEFAULT_RELEASES[0])
    out = source / "loot" / "env"  # inside the tree: the only place the sandbox may write
    out.parent.mkdir()
    (source / "dump-env.cjs").write_text(DUMP.format(out=json.dumps(str(out))))
    root = json.loads((source / "package.json").read_text())
    root["scripts"]["prepare"] = "node dump-env.cjs install"
    (source / "package.json").write_text(json.dumps(root))
    sdk_json = source / sample.SDK_DIR / "package.json"
    sdk = json.loads(sdk_json.read_text())
    sdk["scripts"]["build"] = "node ../../dump-env.cjs build && " + sdk["scripts"]["build"]
    sdk_json.write_text(json.dumps(sdk))

    cfg = config_mod.from_mapping({"work_dir": str(tmp_path / "state")}, root=tmp_path)
    outcome = smoke.build(source, toolchain_primary, cfg)
    assert outcome.ok, outcome.log
    for phase in ("install", "build"):
        loot = json.loads(Path(f"{out}-{phase}.json").read_text())
        no_secret_in(json.dumps(loot))
        assert loot["home"] != user["HOME"] and not loot["npmrc"]
        for key in ("SDKMIRROR_PUSH_TOKEN", "GITHUB_TOKEN", "NODE_AUTH_TOKEN"):
            assert key not in loot["env"]
        assert not any(k.startswith("ACTIONS_ID_TOKEN_") for k in loot["env"])


@pytest.mark.slow
def test_a_dependency_postinstall_never_runs_in_the_consumer_check(
    tmp_path: Path, toolchain_primary, monkeypatch
) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    marker = tmp_path / "postinstall-ran.json"
    dep = tmp_path / "evil-dep"
    dep.mkdir()
    script = f"require('fs').writeFileSync({json.dumps(str(marker))}, JSON.stringify(process.env))"
    (dep / "index.js").write_text(script)
    (dep / "package.json").write_text(
        json.dumps(
            {"name": "evil-dep", "version": "1.0.0", "scripts": {"postinstall": "node index.js"}}
        )
    )
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "index.mjs").write_text("export const hello = 1;\n")
    (pkg / "package.json").write_text(
        json.dumps(
            {
                "name": "hand-made-sdk",
                "version": "1.0.0",
                "type": "module",
                "exports": "./index.mjs",
                "dependencies": {"evil-dep": f"file:{dep}"},
                "scripts": {"postinstall": "node -e \"require('fs').writeFileSync('x','')\""},
            }
        )
    )
    tgz = publish_build.pack(toolchain_primary, pkg, tmp_path / "pack")
    exports = publish_build.consumer_import(
        toolchain_primary, tmp_path / "consumer", "hand-made-sdk", [str(tgz)]
    )
    assert exports == ["hello"]
    assert (tmp_path / "consumer" / "node_modules" / "evil-dep" / "package.json").is_file()
    assert not marker.exists()


@pytest.mark.slow
def test_a_build_that_links_its_environment_into_dist_packs_nothing(
    tmp_path: Path, toolchain_primary, monkeypatch
) -> None:
    from sdkmirror.infra import plainfiles
    from sdkmirror.release.package import repackage

    monkeypatch.setenv("SDKMIRROR_PUSH_TOKEN", SECRETS["SDKMIRROR_PUSH_TOKEN"])
    source = sample.write_tree(tmp_path / "source", sample.DEFAULT_RELEASES[0])
    sdk_json = source / sample.SDK_DIR / "package.json"
    sdk = json.loads(sdk_json.read_text())
    sdk["scripts"]["build"] += " && ln -s /proc/self/environ dist/env.txt"
    sdk_json.write_text(json.dumps(sdk))
    cfg = config_mod.from_mapping({"work_dir": str(tmp_path / "state")}, root=tmp_path)
    outcome = smoke.build(source, toolchain_primary, cfg)
    assert outcome.ok, outcome.log
    assert (outcome.dist_dir / "env.txt").is_symlink()
    dest = tmp_path / "package"
    with pytest.raises(plainfiles.UnsafeFile, match=r"'dist/env.txt' .* is a symbolic link"):
        repackage.repackage(
            outcome.sdk_dir,
            outcome.dist_dir,
            dest,
            sdk_pkg=outcome.package_json,
            source_root=source,
            npm_name="@botiverse/kimi-code-sdk",
            version="0.9.3",
            provenance=repackage.Provenance(sample.SDK_NAME, "0.9.3", "t", "c" * 40),
        )
    assert not dest.exists() and list(tmp_path.glob(".package.*")) == []


def test_each_toolchain_command_gets_a_fresh_home_removed_after(tmp_path: Path, monkeypatch):
    from sdkmirror.core.config import ToolchainSpec
    from sdkmirror.infra.toolchain import Toolchain

    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    tc = Toolchain(ToolchainSpec("24.19.0", "10.33.0"), tmp_path / "bin", "", "")
    script = 'echo "$HOME"; echo "files:$(ls -A "$HOME")"; env'
    first, second = (tc.run(["sh", "-c", script]).stdout for _ in range(2))
    homes = [out.splitlines()[0] for out in (first, second)]
    assert homes[0] != homes[1] and homes[0] != os.environ.get("HOME")
    assert first.splitlines()[1] == "files:"  # empty: no .npmrc, no .ssh
    assert not any(Path(h).exists() for h in homes)
    no_secret_in(first)
