"""Output a person or a pipe reads: tables keep identifiers whole when not on a terminal."""

from __future__ import annotations

import json

from sdkmirror.infra import console


def test_piped_tables_keep_identifiers_on_one_line(capsys):
    name = "patch-demo-fix-" + "x" * 90
    console.show(console.table("patch branches", ["name", "reason"], [[name, "y " * 60]]))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "patch branches"
    assert any(name in line for line in lines)
    assert len(lines) == 3  # title, header, one row: nothing wrapped


def test_results_go_to_stdout_plain_and_json_starts_with_its_schema(capsys):
    console.result(console.table("t", ["name"], [["patch-" + "y" * 120]]))
    console.result_json({"items": ["x" * 300]})
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:3] == ["t", "name", "patch-" + "y" * 120] and err == ""
    doc = json.loads("\n".join(lines[3:]))
    assert list(doc) == ["schema", "items"] and doc["schema"] == console.JSON_SCHEMA == 1
