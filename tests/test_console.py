"""Output a person or a pipe reads: tables keep identifiers whole when not on a terminal."""

from __future__ import annotations

from sdkmirror.infra import console


def test_piped_tables_keep_identifiers_on_one_line(capsys):
    name = "patch-demo-fix-" + "x" * 90
    console.show(console.table("patch branches", ["name", "reason"], [[name, "y " * 60]]))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "patch branches"
    assert any(name in line for line in lines)
    assert len(lines) == 3  # title, header, one row: nothing wrapped
