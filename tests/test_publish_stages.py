"""The publish stages on their own: build (tarball + manifest, reproducible), upload (integrity
first, nothing but `npm publish FILE`), check (install from the registry), reproduce."""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomlkit

from sdkmirror.core.errors import UsageError
from sdkmirror.mirror import releases
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish import manifest as publish_manifest
from sdkmirror.release.publish import pipeline as publish
from sdkmirror.release.publish import reproduce as publish_reproduce
from sdkmirror.release.publish.manifest import Manifest

# A refused loopback connection fails at once in every test here.
pytestmark = pytest.mark.usefixtures("no_npm_retries")

NPM_NAME = "@botiverse/kimi-code-sdk"
TAG = "@moonshot-ai/kimi-code@{}"
INTEGRITY = "sha512-" + "A" * 86 + "=="

GOOD = Manifest(
    npm_name=NPM_NAME,
    npm_version="0.9.3",
    sdk_version="0.9.3",
    upstream_tag=TAG.format("0.14.2"),
    commit="c" * 40,
    source_ref=None,
    override_reason=None,
    tarball="botiverse-kimi-code-sdk-0.9.3.tgz",
    integrity=INTEGRITY,
    shasum="d" * 40,
    dist_tag="latest",
    toolchain={"node": "24.19.0", "pnpm": "10.33.0"},
)


def test_manifest_round_trips(tmp_path: Path) -> None:
    path = publish_manifest.write(tmp_path / "out" / "manifest.json", GOOD)
    data = json.loads(path.read_text())
    assert (data["kind"], data["schema"]) == ("publish-build", 1)
    assert publish_manifest.read(path) == GOOD
    assert publish_manifest.read(tmp_path / "out") == GOOD  # the directory holding it
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temp file left


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kind", "publish"),
        ("schema", 2),
        ("npm_version", "0.9.3\n"),
        ("npm_version", "0.9.\uff13"),
        ("sdk_version", "00.9.3"),
        ("commit", "c" * 39),
        ("commit", "C" * 40),
        ("integrity", "sha1-abc"),
        ("integrity", INTEGRITY + "\n"),
        ("shasum", "x"),
        ("tarball", "../../etc/passwd.tgz"),
        ("tarball", "/abs.tgz"),
        ("dist_tag", "1.2.3"),
        ("upstream_tag", "tag\nwith a newline"),
        ("toolchain", {"node": "/../../x", "pnpm": "10.33.0"}),
        ("extra_key", "surprise"),
    ],
)
def test_a_crafted_manifest_is_refused_naming_the_key(key: str, value: object) -> None:
    data = GOOD.as_json() | {key: value}
    with pytest.raises(UsageError, match=rf"manifest key '{key.split('.')[0]}") as info:
        publish_manifest.validate(data)
    assert "\n" not in str(info.value)


def test_the_writer_refuses_what_the_reader_would(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="manifest key 'commit'"):
        publish_manifest.write(tmp_path / "m.json", replace(GOOD, commit="nope"))
    assert not list(tmp_path.iterdir())


def test_an_unreadable_manifest_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the manifest"):
        publish_manifest.read(tmp_path / "missing.json")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(UsageError, match="is not JSON"):
        publish_manifest.read(tmp_path / "m.json")


# --- against a real registry ------------------------------------------------------------------


def tamper(tgz: Path, dest: Path) -> Path:
    """The same tarball with one byte of the bundle changed, repacked."""
    work = dest.parent / "tamper"
    with tarfile.open(tgz, "r:gz") as tar:
        tar.extractall(work, filter="data")
    index = work / "package" / "dist" / "index.mjs"
    index.write_text(index.read_text() + "\n// exfiltrate\n")
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(work / "package", arcname="package")
    shutil.rmtree(work)
    return dest


@pytest.mark.slow
def test_stages_build_upload_check_reproduce(project, cfg, mirror, registry, toolchain, tmp_path):
    env = registry.npm_env()
    common = ["--origin", str(mirror), "--registry", registry.url]
    tag = TAG.format("0.14.2")

    # build: twice from the same tag, the same bytes; the second skips the checks they passed
    outs = [tmp_path / "out1", tmp_path / "out2"]
    said = []
    for out in outs:
        cp = project.invoke(
            "publish.build", "--source-tag", tag, "--out", str(out), *common, env=env
        )
        assert cp.returncode == 0, cp.stderr
        said.append(cp.stderr)
    assert "not run again" not in said[0] and "strict consumer type-check" in said[0]
    assert "not run again" in said[1] and "strict consumer type-check" not in said[1]
    first, second = (publish_manifest.read(out) for out in outs)
    assert first.integrity == second.integrity
    assert (outs[0] / first.tarball).read_bytes() == (outs[1] / second.tarball).read_bytes()
    assert (first.npm_version, first.upstream_tag, first.dist_tag) == ("0.9.3", tag, "latest")
    assert first.toolchain == {"node": "24.19.0", "pnpm": "10.33.0"}
    assert publish.registry_integrity(NPM_NAME, "0.9.3", registry.url) is None
    tgz = outs[0] / first.tarball

    def upload(path: Path, integrity: str, *extra: str):
        return project.invoke(
            "publish.upload", "--tarball", str(path), "--integrity", integrity,
            "--source-tag", tag, *common, *extra, env=env,
        )  # fmt: skip

    # upload: a tampered tarball, or a wrong integrity, is refused before anything is read
    bad = tamper(tgz, tmp_path / "tampered.tgz")
    cp = upload(bad, first.integrity, "--no-dry-run")
    assert cp.returncode == 7 and "nothing uploaded" in cp.stderr, cp.stderr
    cp = upload(tgz, "sha512-nope", "--no-dry-run")
    assert cp.returncode == 2 and "--integrity is not a sha512 integrity" in cp.stderr
    cp = upload(tgz, first.integrity)  # a dry run by default
    assert cp.returncode == 0, cp.stderr
    assert "dry run: nothing uploaded" in cp.stdout  # the result line
    assert publish.registry_integrity(NPM_NAME, "0.9.3", registry.url) is None

    cp = upload(tgz, first.integrity, "--no-dry-run")
    assert cp.returncode == 0, cp.stderr
    assert publish.registry_integrity(NPM_NAME, "0.9.3", registry.url) == (first.integrity)
    # Without --source-tag, the build's own manifest beside the tarball names the tag.
    again = project.invoke(
        "publish.upload", "--tarball", str(outs[1] / second.tarball), "--integrity",
        second.integrity, *common, "--no-dry-run", env=env,
    )  # fmt: skip
    assert again.returncode == 0 and "already published" in again.stdout, again.stderr

    # check: installs from the registry, imports, and the integrity is the manifest's
    cp = project.invoke(
        "publish.check", "--version", "0.9.3", "--manifest", str(outs[0]),
        "--registry", registry.url, env=env,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "createClient" in cp.stdout

    # the maintainer's path records the (already uploaded) release; then reproduce it
    cp = project.invoke("publish", "--source-tag", tag, *common, "--no-dry-run", env=env)
    assert cp.returncode == 0, cp.stderr
    assert releases.ReleaseLedger(cfg.release_ledger).get("0.9.3").integrity == first.integrity
    cp = project.invoke("publish.reproduce", "--version", "0.9.3", *common, env=env)
    assert cp.returncode == 0, cp.stderr
    assert "byte-identical" in cp.stdout
    # A reproduction builds for real; the bytes it made are the checked ones.
    assert "==> pnpm build" in cp.stderr and "build cache hit" not in cp.stderr
    assert "not run again" in cp.stderr
    entry = tomlkit.parse(cfg.release_ledger.read_text())["releases"]["0.9.3"]
    assert entry["reproduced"] is True and isinstance(entry["reproduced_at"], datetime)


@pytest.mark.slow
@pytest.mark.usefixtures("shared_build_cache")
def test_reproduce_names_the_files_that_differ(project, cfg, mirror, registry, toolchain, tmp_path):
    env = registry.npm_env()
    common = ["--origin", str(mirror), "--registry", registry.url]
    # 0.9.9 is built and uploaded from 0.14.3 ...
    out = tmp_path / "out"
    cp = project.invoke(
        "publish.build", "--source-tag", TAG.format("0.14.3"), "--out", str(out),
        "--version-override", "0.9.9", *common, env=env,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    m = publish_manifest.read(out)
    cp = project.invoke(
        "publish.upload", "--tarball", str(out / m.tarball), "--integrity", m.integrity,
        "--source-tag", TAG.format("0.14.3"), "--version-override", "0.9.9", *common,
        "--no-dry-run", env=env,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    # ... but the ledger claims it came from 0.14.2: the rebuild must not match.
    ledger = releases.ReleaseLedger(cfg.release_ledger)
    commit = publish_build.MirrorLedger(cfg.mirror_ledger).tags[TAG.format("0.14.2")].commit
    ledger.add(
        releases.Release(
            "0.9.9", NPM_NAME, TAG.format("0.14.2"), commit, "0.9.3", m.integrity,
            datetime(2026, 1, 2, tzinfo=UTC), registry.url,
        )
    )  # fmt: skip
    ledger.save()
    cp = project.invoke("publish.reproduce", "--version", "0.9.9", *common, env=env)
    assert cp.returncode == 7, cp.stderr
    last = cp.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 0.9.9 does not reproduce:") and "reproduced = false" in last
    assert "differs: package/package.json (changed)" in cp.stderr
    assert "differs: package/NOTICE.md (changed)" in cp.stderr
    assert cp.stdout.startswith("--- registry/package/") and "+++ rebuild/package/" in cp.stdout
    entry = tomlkit.parse(cfg.release_ledger.read_text())["releases"]["0.9.9"]
    assert entry["reproduced"] is False


def _tgz(path: Path, files: dict[str, str]) -> Path:
    import io

    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_compare_lists_what_differs_and_diffs_the_first(tmp_path: Path) -> None:
    ours = _tgz(tmp_path / "a.tgz", {"package.json": "{}\n", "dist/x.mjs": "a\nb\n", "L": "x"})
    same = tmp_path / "same.tgz"
    shutil.copyfile(ours, same)
    assert publish_reproduce.compare(ours, same).identical
    theirs = _tgz(tmp_path / "b.tgz", {"package.json": "{}\n", "dist/x.mjs": "a\nc\n", "N": "y"})
    result = publish_reproduce.compare(ours, theirs)
    assert not result.identical
    assert result.differing == [
        "package/L (only in the rebuild)",
        "package/N (only on the registry)",
        "package/dist/x.mjs (changed)",
    ]
    assert "-c" in result.diff.splitlines() and "+b" in result.diff.splitlines()


@pytest.mark.slow
@pytest.mark.usefixtures("shared_build_cache")
def test_ci_upload_derives_every_fact_from_the_bytes(project, cfg, mirror, registry, tmp_path):
    """The CI upload job: the artifact's one tarball, the tag from the arguments step, and
    job outputs that come from its own checked copy (the build's manifest is not there)."""
    env = registry.npm_env()
    common = ["--origin", str(mirror), "--registry", registry.url]
    tag = TAG.format("0.14.2")
    out = tmp_path / "out"
    cp = project.invoke("publish.build", "--source-tag", tag, "--out", str(out), *common, env=env)
    assert cp.returncode == 0, cp.stderr
    built = publish_manifest.read(out)
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    shutil.copy(out / built.tarball, artifact / built.tarball)  # what download-artifact leaves
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    cp = project.invoke(
        "ci.upload", "--tarball-dir", str(artifact), "--source-tag", tag, *common,
        env={**env, "GITHUB_OUTPUT": str(outputs)},
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    facts = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    assert facts["npm_name"] == NPM_NAME and facts["npm_version"] == "0.9.3"
    assert facts["integrity"] == built.integrity and facts["tarball"] == built.tarball
    assert facts["upstream_tag"] == tag and facts["commit"] == built.commit
    assert facts["sdk_version"] == "0.9.3" and facts["dist_tag"] == "latest"
