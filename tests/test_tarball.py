"""Tarball inspection on tarballs built here: good ones pass, links and escaping paths do not."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from sdkmirror.core.errors import MirrorError
from sdkmirror.release.package import tarball

GOOD = {
    "package/package.json": b'{"name":"x","version":"1.0.0"}',
    "package/LICENSE": b"MIT",
    "package/NOTICE.md": b"notice",
    "package/README.md": b"readme",
    "package/dist/index.mjs": b"export const a = 1;\n",
    "package/dist/index.d.mts": b"export declare const a: number;\n",
}


def make_tgz(path: Path, files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return path


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_good_tarball_reports_files_size_and_npm_digests(tmp_path: Path) -> None:
    tgz = make_tgz(tmp_path / "x.tgz", GOOD)
    report = tarball.inspect(tgz)
    assert report.file_count == 6
    assert "dist/index.mjs" in report.files
    assert report.size == tgz.stat().st_size
    assert report.unpacked_size == sum(len(v) for v in GOOD.values())
    data = tgz.read_bytes()
    assert report.integrity == "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert report.shasum == hashlib.sha1(data, usedforsecurity=False).hexdigest()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([link("package/dist/evil.mjs", "/etc/passwd", tarfile.SYMTYPE)], "symlink"),
        ([link("package/dist/hard.mjs", "package/LICENSE", tarfile.LNKTYPE)], "hardlink"),
    ],
    ids=["symlink", "hardlink"],
)
def test_links_are_refused(tmp_path: Path, extra, needle: str) -> None:
    tgz = make_tgz(tmp_path / "x.tgz", GOOD, extra)
    with pytest.raises(tarball.TarballRejected, match=needle) as exc:
        tarball.inspect(tgz)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("package/../../outside.js", "escapes"),
        ("/package/abs.js", "absolute"),
        ("other/file.js", "outside package/"),
        ("package/src/index.ts", "not one of"),
        ("package/.npmrc", "not one of"),
    ],
    ids=["dotdot", "absolute", "no-prefix", "sources", "npmrc"],
)
def test_unexpected_paths_are_refused(tmp_path: Path, name: str, needle: str) -> None:
    tgz = make_tgz(tmp_path / "x.tgz", {**GOOD, name: b"x"})
    with pytest.raises(tarball.TarballRejected, match=needle):
        tarball.inspect(tgz)


def test_missing_license_or_dist_is_refused(tmp_path: Path) -> None:
    files = {k: v for k, v in GOOD.items() if not k.startswith(("package/LICENSE", "package/dist"))}
    with pytest.raises(tarball.TarballRejected, match=r"lacks LICENSE, dist/\*\*"):
        tarball.inspect(make_tgz(tmp_path / "x.tgz", files))


def test_not_a_tarball_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.tgz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(MirrorError, match=r"not a readable \.tgz"):
        tarball.inspect(bad)
