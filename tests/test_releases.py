"""The release ledger and RELEASES.md: records, rendering, drift check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sdkmirror.core.errors import MirrorError, RecordError, VerificationFailed
from sdkmirror.mirror import releases
from sdkmirror.mirror.releases import Release, ReleaseLedger


def rel(version: str, tag: str, *, integrity: str = "sha512-AAA", reason: str | None = None):
    return Release(
        npm_version=version,
        npm_name="@botiverse/kimi-code-sdk",
        upstream_tag=tag,
        commit="c" * 40,
        sdk_version="0.9.3",
        integrity=integrity,
        published_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        registry="http://127.0.0.1:1/",
        override_reason=reason,
    )


def test_ledger_round_trip_keeps_comments_and_refuses_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "releases.toml"
    ledger = ReleaseLedger(path)
    assert ledger.add(rel("0.9.3", "@moonshot-ai/kimi-code@0.14.2"))
    assert ledger.add(rel("0.9.5", "@moonshot-ai/kimi-code@0.16.0", reason="re-bundled"))
    ledger.save()
    text = path.read_text()
    assert text.startswith("# Release ledger")
    again = ReleaseLedger(path)
    assert again.get("0.9.5").override_reason == "re-bundled"
    assert again.get("0.9.3").override_reason is None
    assert again.get("0.9.3").published_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert not again.add(rel("0.9.3", "@moonshot-ai/kimi-code@0.14.2"))  # identical: no-op
    with pytest.raises(MirrorError, match="immutable"):
        again.add(rel("0.9.3", "@moonshot-ai/kimi-code@0.14.2", integrity="sha512-BBB"))


def test_render_maps_tags_to_versions_then_notes(tmp_path: Path) -> None:
    ledger = ReleaseLedger(tmp_path / "ledger" / "releases.toml")
    ledger.add(rel("0.9.3", "@moonshot-ai/kimi-code@0.14.2"))
    ledger.add(rel("0.10.0", "@moonshot-ai/kimi-code@0.19.0"))
    ledger.save()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "0.10.0.md").write_text("Removes `legacyPrompt`.\n")
    (notes / "0.11.0.md").write_text("Upcoming.\n")
    text = releases.render_file(ledger.path, notes, tmp_path)
    assert "| 0.10.0 | `@moonshot-ai/kimi-code@0.19.0` |" in text
    assert "| 0.9.3 | `@moonshot-ai/kimi-code@0.14.2` |" in text
    # newest first, by semver (0.10.0 after 0.9.3 as strings would sort wrong)
    assert text.index("## 0.11.0") < text.index("## 0.10.0") < text.index("## 0.9.3")
    assert "Removes `legacyPrompt`." in text
    assert "_Not published yet._" in text
    assert "write `notes/0.9.3.md`" in text
    assert "ledger/releases.toml" in text

    target = tmp_path / "RELEASES.md"
    with pytest.raises(VerificationFailed, match="out of date"):
        releases.sync_file(target, text, check=True)
    assert releases.sync_file(target, text, check=False)
    assert not releases.sync_file(target, text, check=True)
    assert releases.has_entry(target, "0.10.0") and releases.has_entry(target, "0.11.0")
    assert not releases.has_entry(target, "0.9.4")


def test_badly_named_notes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "latest.md").write_text("x")
    with pytest.raises(MirrorError, match="rename it"):
        releases.read_notes(tmp_path / "notes")


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ('[releases."0.9.3"]\nnpm_name = "x"\n', "upstream_tag"),
        ('[releases."0.9.3"]\ncommit = 1\n', "npm_name"),
        ("releases = [1, 2]\n", "releases"),
    ],
    ids=["missing-key", "wrong-type", "not-a-table"],
)
def test_a_malformed_release_ledger_names_the_file_and_key(tmp_path, entry, key):
    path = tmp_path / "releases.toml"
    path.write_text(entry)
    with pytest.raises(RecordError) as err:
        ReleaseLedger(path)
    assert str(path) in err.value.message and key in err.value.message


def test_a_release_key_that_is_not_a_version_is_refused(tmp_path):
    path = tmp_path / "releases.toml"
    path.write_text('[releases."0.9.3\\n"]\n')
    with pytest.raises(RecordError, match="not an exact npm version"):
        ReleaseLedger(path)
