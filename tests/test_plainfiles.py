"""A hostile build output: links, special files and huge files never reach the package."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from conftest import PROV

from sdkmirror.core import config as config_mod
from sdkmirror.infra import plainfiles
from sdkmirror.infra.plainfiles import UnsafeFile
from sdkmirror.release.package import repackage

SDK = {
    "name": "@moonshot-ai/kimi-code-sdk",
    "version": "0.9.3",
    "type": "module",
    "publishConfig": {"exports": {".": {"import": "./dist/index.mjs"}}},
}


def built_sdk(tmp_path: Path) -> tuple[Path, Path]:
    """A source root with LICENSE and an SDK whose dist holds one ordinary module."""
    root = tmp_path / "source"
    sdk = root / "packages" / "node-sdk"
    (sdk / "dist").mkdir(parents=True)
    (root / "LICENSE").write_text("MIT License\n")
    (sdk / "dist" / "index.mjs").write_text("export const VERSION = '0.9.3';\n")
    return root, sdk


def do_repackage(root: Path, sdk: Path, dest: Path, **kw) -> repackage.Package:
    return repackage.repackage(
        sdk,
        sdk / "dist",
        dest,
        sdk_pkg=SDK,
        source_root=root,
        npm_name="@botiverse/kimi-code-sdk",
        version="0.9.3",
        provenance=PROV,
        **kw,
    )


def refused(root: Path, sdk: Path, tmp_path: Path, match: str, **kw) -> None:
    dest = tmp_path / "package"
    with pytest.raises(UnsafeFile, match=match) as info:
        do_repackage(root, sdk, dest, **kw)
    assert "nothing was packed" in str(info.value) or "only a plain file" in str(info.value)
    assert "\n" not in str(info.value)
    # nothing packed: neither the package nor a half-written temporary sibling
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "source"] == []


def test_a_plain_dist_is_copied_with_normalised_modes_and_mtimes(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    (sdk / "dist" / "chunks").mkdir()
    (sdk / "dist" / "chunks" / "a.mjs").write_text("export {};\n")
    os.chmod(sdk / "dist" / "index.mjs", 0o775)  # noqa: S103 - the copy must drop it
    pkg = do_repackage(root, sdk, tmp_path / "package")
    files = sorted(p.relative_to(pkg.dir).as_posix() for p in pkg.dir.rglob("*"))
    assert files == [
        "LICENSE",
        "NOTICE.md",
        "README.md",
        "dist",
        "dist/chunks",
        "dist/chunks/a.mjs",
        "dist/index.mjs",
        "package.json",
    ]
    for p in pkg.dir.rglob("*"):
        st = p.lstat()
        assert st.st_mtime == plainfiles.FIXED_MTIME
        assert st.st_mode & 0o7777 == (0o755 if p.is_dir() else 0o644)
    assert (pkg.dir / "dist" / "index.mjs").read_text() == "export const VERSION = '0.9.3';\n"


def test_symlink_to_a_file_is_refused(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    (sdk / "dist" / "passwd.txt").symlink_to("/etc/passwd")
    refused(root, sdk, tmp_path, r"'dist/passwd.txt' in the build output is a symbolic link")


def test_symlink_to_proc_self_environ_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SDKMIRROR_PUSH_TOKEN", "push-secret-123")
    root, sdk = built_sdk(tmp_path)
    (sdk / "dist" / "env.txt").symlink_to("/proc/self/environ")
    refused(root, sdk, tmp_path, r"'dist/env.txt' .* is a symbolic link")


def test_symlink_to_a_directory_is_refused(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    secrets = tmp_path / "home" / ".ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_ed25519").write_text("PRIVATE KEY")
    (sdk / "dist" / "ssh").symlink_to(secrets)
    with pytest.raises(UnsafeFile, match=r"'dist/ssh' .* is a symbolic link"):
        do_repackage(root, sdk, tmp_path / "package")
    assert not (tmp_path / "package").exists()


def test_dist_itself_a_symlink_is_refused(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    real = tmp_path / "elsewhere"
    (sdk / "dist").rename(real)
    (sdk / "dist").symlink_to(real)
    with pytest.raises(UnsafeFile, match="is a symbolic link"):
        do_repackage(root, sdk, tmp_path / "package")


def test_hard_link_is_refused(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("token=abc\n")
    os.link(outside, sdk / "dist" / "notes.txt")
    with pytest.raises(UnsafeFile, match=r"'dist/notes.txt' .* is a hard link"):
        do_repackage(root, sdk, tmp_path / "package")
    assert not (tmp_path / "package").exists()


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    os.mkfifo(sdk / "dist" / "pipe.mjs")
    refused(root, sdk, tmp_path, r"'dist/pipe.mjs' .* is a FIFO")


def test_socket_is_refused(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sdk / "dist" / "s.sock"))
        refused(root, sdk, tmp_path, r"'dist/s.sock' .* is a socket")


def test_setuid_bit_is_refused(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    os.chmod(sdk / "dist" / "index.mjs", 0o4755)  # noqa: S103 - the attack
    refused(root, sdk, tmp_path, r"'dist/index.mjs' .* setuid, setgid or sticky bit")


@pytest.mark.parametrize("name", ["a\nb.mjs", "a\\b.mjs", "a..b.mjs", "x\x1b[31m.mjs"])
def test_hostile_names_are_refused(tmp_path: Path, name: str) -> None:
    root, sdk = built_sdk(tmp_path)
    (sdk / "dist" / name).write_text("export {};\n")
    with pytest.raises(UnsafeFile, match="in its name") as info:
        do_repackage(root, sdk, tmp_path / "package")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_a_sparse_gigabyte_is_refused_by_size_without_reading_it(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    big = sdk / "dist" / "huge.mjs"
    with open(big, "wb") as fh:
        fh.truncate(1 << 30)
    assert big.stat().st_blocks * 512 < 1 << 20  # truly sparse: nothing to read
    os.chmod(big, 0)  # unreadable: a refusal that read the file would fail differently
    refused(root, sdk, tmp_path, r"'dist/huge.mjs' .* over max_package_bytes")


def test_max_package_bytes_counts_the_whole_tree(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    (sdk / "dist" / "more.mjs").write_text("x" * 100)
    with pytest.raises(UnsafeFile, match=r"max_package_bytes \(1\d\d > 100 bytes"):
        do_repackage(root, sdk, tmp_path / "package", max_bytes=100)
    do_repackage(root, sdk, tmp_path / "package", max_bytes=1000)


def test_a_linked_license_is_refused(tmp_path: Path) -> None:
    root, sdk = built_sdk(tmp_path)
    (root / "LICENSE").unlink()
    (root / "LICENSE").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeFile, match="LICENSE' is a symbolic link"):
        do_repackage(root, sdk, tmp_path / "package")
    assert not (tmp_path / "package").exists()


def test_max_package_bytes_is_configurable_and_checked(tmp_path: Path) -> None:
    assert config_mod.from_mapping({}, root=tmp_path).max_package_bytes == 50 * 1024 * 1024
    cfg = config_mod.from_mapping({"max_package_bytes": 1000}, root=tmp_path)
    assert cfg.max_package_bytes == 1000
    for bad in (0, -1, "50MB", True, 1.5):
        with pytest.raises(config_mod.ConfigError, match="max_package_bytes must be"):
            config_mod.from_mapping({"max_package_bytes": bad}, root=tmp_path)
