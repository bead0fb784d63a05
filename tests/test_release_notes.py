"""Interface notes: the public surface of two built sample releases, diffed and classified."""

from __future__ import annotations

import pytest

from sdkmirror import proc, release_notes, sample
from sdkmirror.ledger import MirrorLedger
from sdkmirror.release_notes import Export, Surface

DTS = """\
/** The options. */
export type ClientOptions = {
  model?: string;
};
export declare const VERSION: string;
export declare function createClient(options: unknown): unknown;
declare function hidden(a: string): void;
declare class Session {}
interface Steering { text: string }
export { hidden as renamed, Session, type Steering };
export type { Other } from "./other";
"""


def test_type_reader_finds_declarations_and_export_lists() -> None:
    found = release_notes.type_exports(DTS)
    assert set(found) == {
        "ClientOptions",
        "VERSION",
        "createClient",
        "renamed",
        "Session",
        "Steering",
        "Other",
    }
    assert found["createClient"].kind == "function"
    assert found["renamed"].kind == "function"  # resolved through the local declaration
    assert found["Session"].kind == "class"
    assert found["Steering"].kind == "interface"
    assert found["Other"].kind == "type"
    assert "hidden" not in found


def test_diff_classifies_removals_and_new_required_params_as_breaking() -> None:
    old = Surface({"a": Export("function", "1 args"), "b": Export("string")}, {})
    added = Surface({**old.runtime, "c": Export("function", "0 args")}, {})
    assert release_notes.diff(old, added).classification == "additive"
    assert release_notes.diff(old, old).classification == "unchanged"
    removed = Surface({"a": old.runtime["a"]}, {})
    assert release_notes.diff(old, removed).classification == "breaking"
    stricter = Surface({**old.runtime, "a": Export("function", "2 args")}, {})
    assert release_notes.diff(old, stricter).breaking
    looser = Surface({**old.runtime, "a": Export("function", "0 args")}, {})
    assert release_notes.diff(old, looser).classification == "additive"


@pytest.mark.slow
def test_notes_between_two_sample_releases(project, tmp_path, capsys) -> None:
    up = sample.create_upstream(tmp_path / "upstream.git")
    origin = tmp_path / "origin.git"
    proc.run(["git", "clone", "-q", "--bare", str(up.bare), str(origin)])
    cfg = project.config()
    ledger = MirrorLedger(cfg.mirror_ledger)
    for name, commit in up.tags.items():
        ledger.add_tag(name, commit, commit)
    ledger.save()

    text = release_notes.main(
        from_tag=up.tag("0.14.2"), to_tag=up.tag("0.19.0"), origin=str(origin), cfg=cfg
    )
    assert text.startswith("## 0.10.0\n")
    assert "Interface change: **breaking**" in text
    added = text.split("### Added")[1].split("###")[0]
    removed = text.split("### Removed (breaking)")[1].split("###")[0]
    assert "`steer` (runtime: function" in added and "`steer` (types: function" in added
    assert "`legacyPrompt` (runtime: function" in removed
    assert "`legacyPrompt` (types: function" in removed
    assert "createClient" not in text  # unchanged exports are not listed
    assert capsys.readouterr().out == text  # the draft goes to stdout, diagnostics to stderr

    additive = release_notes.main(
        from_tag=up.tag("0.14.3"), to_tag=up.tag("0.17.0"), origin=str(origin), cfg=cfg
    )
    assert "Interface change: **additive**" in additive
