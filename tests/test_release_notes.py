"""Interface notes: declared surfaces read by the TypeScript compiler, diffed and classified."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import pytest

from sdkmirror.core.errors import MirrorError
from sdkmirror.devtools import sample
from sdkmirror.infra import proc
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.release import notes as release_notes
from sdkmirror.release.declarations import surface as api_surface
from sdkmirror.release.declarations.surface import Export, Member, Param, Signature, Surface
from sdkmirror.release.notes import ADDITIVE, BREAKING, IMPLEMENTERS

# The notes are the subject here: releases other tests built are reused.
pytestmark = pytest.mark.usefixtures("shared_build_cache")

# --- pure: hand-written surfaces ------------------------------------------------------------


def sig(text: str, *params: Param, returns: str = "void") -> Signature:
    return Signature(text, tuple(params), returns)


def req(name: str, type_: str = "string") -> Param:
    return Param(name, type_, optional=False)


def opt(name: str, type_: str = "string") -> Param:
    return Param(name, type_, optional=True)


def fn(name: str, *sigs: Signature) -> Export:
    return Export(name, "function", False, sigs)


def prop(name: str, type_: str, *, optional: bool = False) -> Member:
    return Member(name, "property", optional, (Signature(f"{name}: {type_}"),))


def method(name: str, *sigs: Signature) -> Member:
    return Member(name, "method", False, sigs)


def holder(kind: str, name: str, *members: Member) -> Export:
    return Export(name, kind, False, (Signature(f"{kind} {name}"),), members)


def alias(name: str, text: str, *, type_only: bool = False) -> Export:
    return Export(name, "type", type_only, (Signature(f"type {name} = {text}"),))


def surface(*exports: Export) -> Surface:
    return Surface({e.name: e for e in exports})


def changes(old: Surface, new: Surface) -> set[tuple[str, str, str]]:
    return {(c.subject, c.change, c.severity) for c in release_notes.diff(old, new).changes}


PROMPT = fn("prompt", sig("function prompt(text: string): void", req("text")))
CONNECT = method("connect", sig("connect(): void"))
CLIENT = holder("class", "Client", CONNECT)
TOOL = holder("interface", "Tool", prop("name", "string"))
BASE = surface(PROMPT, CLIENT, TOOL, alias("Input", "string | number"))


def with_(*exports: Export) -> Surface:
    return Surface({**BASE.exports, **{e.name: e for e in exports}})


def test_export_added_is_additive_and_removed_is_breaking() -> None:
    more = with_(fn("steer", sig("function steer(): void")))
    assert changes(BASE, more) == {("steer", "export added", ADDITIVE)}
    assert release_notes.diff(BASE, more).classification == ADDITIVE
    assert changes(more, BASE) == {("steer", "export removed", BREAKING)}
    assert release_notes.diff(BASE, BASE).classification == "unchanged"


def test_narrowed_exports_are_breaking() -> None:
    narrowed = with_(alias("Input", "string"))
    assert changes(BASE, narrowed) == {("Input", "signature changed", BREAKING)}
    type_only = with_(Export("prompt", "function", True, PROMPT.signatures))
    assert changes(BASE, type_only) == {("prompt", "signature changed", BREAKING)}
    became_class = with_(holder("class", "prompt"))
    assert changes(BASE, became_class) == {("prompt", "signature changed", BREAKING)}


def test_parameters_required_or_optional() -> None:
    two = "function prompt(text: string, mode: string): void"
    required = with_(fn("prompt", sig(two, req("text"), req("mode"))))
    assert changes(BASE, required) == {("prompt", "required parameter added", BREAKING)}
    optional = with_(
        fn(
            "prompt",
            sig("function prompt(text: string, mode?: string): void", req("text"), opt("mode")),
        )
    )
    assert changes(BASE, optional) == {("prompt", "optional parameter added", ADDITIVE)}
    renamed = with_(fn("prompt", sig("function prompt(input: string): void", req("input"))))
    assert changes(BASE, renamed) == set()  # a parameter name is not part of the contract
    retyped = with_(fn("prompt", sig("function prompt(text: number): void", req("text", "number"))))
    assert changes(BASE, retyped) == {("prompt", "signature changed", BREAKING)}
    new_return = with_(
        fn("prompt", sig("function prompt(text: string): string", req("text"), returns="string"))
    )
    assert changes(BASE, new_return) == {("prompt", "signature changed", BREAKING)}


def test_overloads_added_and_removed() -> None:
    extra = sig("function prompt(text: string, n: number): void", req("text"), req("n", "number"))
    two = with_(fn("prompt", *PROMPT.signatures, extra))
    assert changes(BASE, two) == {("prompt", "overload added", ADDITIVE)}
    assert changes(two, BASE) == {("prompt", "overload removed", BREAKING)}


def test_members_of_classes_and_interfaces() -> None:
    steer = method("steer", sig("steer(text: string): void", req("text")))
    assert changes(BASE, with_(holder("class", "Client", CONNECT, steer))) == {
        ("Client.steer", "member added", ADDITIVE)
    }
    required = with_(holder("interface", "Tool", prop("name", "string"), prop("run", "() => void")))
    assert changes(BASE, required) == {("Tool.run", "member added", IMPLEMENTERS)}
    assert release_notes.diff(BASE, required).classification == IMPLEMENTERS
    optional = with_(
        holder("interface", "Tool", prop("name", "string"), prop("doc", "string", optional=True))
    )
    assert changes(BASE, optional) == {("Tool.doc", "member added", ADDITIVE)}
    assert changes(BASE, with_(holder("class", "Client"))) == {
        ("Client.connect", "member removed", BREAKING)
    }
    assert changes(BASE, with_(holder("interface", "Tool", prop("name", "number")))) == {
        ("Tool.name", "signature changed", BREAKING)
    }
    connect_opt = method("connect", sig("connect(url?: string): void", opt("url")))
    assert changes(BASE, with_(holder("class", "Client", connect_opt))) == {
        ("Client.connect", "optional parameter added", ADDITIVE)
    }


def test_the_most_severe_change_classifies_the_release() -> None:
    steer = method("steer", sig("steer(): void"))
    both = with_(
        holder("class", "Client", CONNECT, steer),
        holder("interface", "Tool", prop("name", "string"), prop("run", "() => void")),
    )
    assert release_notes.diff(BASE, both).classification == IMPLEMENTERS
    worse = Surface({k: v for k, v in both.exports.items() if k != "prompt"})
    assert release_notes.diff(BASE, worse).classification == BREAKING


def test_markdown_lists_each_change_with_old_and_new() -> None:
    retyped = with_(fn("prompt", sig("function prompt(text: number): void", req("text", "number"))))
    delta = release_notes.diff(BASE, with_(fn("steer", sig("function steer(): void"))))
    delta.changes += release_notes.diff(BASE, retyped).changes
    text = release_notes.markdown(
        delta, version="0.9.4", from_tag="A", to_tag="B", from_version="0.9.3", to_version="0.9.4"
    )
    assert text.startswith("## 0.9.4\n\nUpstream `B` (SDK 0.9.4); previous: `A` (SDK 0.9.3).\n")
    assert "Interface change: **breaking**." in text
    assert "### Added\n\n- `steer`: export added (additive): `function steer(): void`\n" in text
    assert (
        "### Changed\n\n- `prompt`: signature changed (breaking): "
        "`function prompt(text: string): void` -> `function prompt(text: number): void`\n"
    ) in text
    same = release_notes.markdown(
        release_notes.diff(BASE, BASE),
        version="0.9.3",
        from_tag="A",
        to_tag="B",
        from_version="0.9.3",
        to_version="0.9.3",
    )
    assert "Interface change: **unchanged**." in same and "No change to the declared" in same


def test_surface_json_round_trip() -> None:
    data = {
        "exports": [
            {
                "name": "f",
                "kind": "function",
                "type_only": False,
                "signatures": [
                    {
                        "text": "function f(a?: string): void",
                        "params": [
                            {"name": "a", "type": "string", "optional": True, "rest": False}
                        ],
                        "returns": "void",
                        "type_params": "",
                    }
                ],
                "members": None,
            }
        ]
    }
    s = Surface.from_json(data)
    assert s.exports["f"].signatures[0].params == (Param("a", "string", True),)
    assert s.exports["f"].members is None


# --- the compiler, on declaration pairs ---------------------------------------------------------

OLD_DTS = """\
import type { Transport } from "@vendor/transport";
import type { SessionId } from "@moonshot-ai/protocol";
export * from "./events.mjs";
export * from "./linked.mjs";

/** Options. */
export interface Options {
    model?: string;
    transport?: Transport;
}

export declare class Client {
    private secret;
    readonly options: Options;
    constructor(options?: Options);
    static create(): Client;
    request<TResult, TParams extends Record<string, unknown> = Record<string, unknown>>(
        method: string,
        params?: TParams,
    ): Promise<TResult>;
    close(): void;
}

export declare function connect(url: string): Client;
export declare function connect(
    transport: Transport,
    options?: Options,
): Client;

declare function parse(text: string): SessionId;
type Mode = "a" | "b";
export { parse as readSession };
export type { Mode };
export type { TurnEvent as Event } from "@moonshot-ai/protocol";
export default Client;
"""

EVENTS_DTS = """\
export interface TurnEvent {
    turn: number;
}
export declare const VERSION: string;
"""

OUTSIDE_DTS = "export declare const leaked: string;\n"


def _write_pair(base: Path, index: str) -> Path:
    base.mkdir(parents=True)
    (base / "index.d.mts").write_text(index)
    (base / "events.d.mts").write_text(EVENTS_DTS)
    outside = base.parent / f"{base.name}-outside.d.mts"
    outside.write_text(OUTSIDE_DTS)
    (base / "linked.d.mts").symlink_to(outside)  # a link out of the tree: never followed
    return base / "index.d.mts"


@pytest.fixture(scope="module")
def node_toolchain(toolchain_primary):
    return toolchain_primary


@pytest.mark.slow
def test_compiler_reads_every_export_shape(tmp_path: Path, node_toolchain) -> None:
    cache = Path(os.environ["SDKMIRROR_CACHE"])
    old_file = _write_pair(tmp_path / "old", OLD_DTS)
    old = api_surface.read(old_file, node_toolchain, cache)
    assert set(old.exports) == {
        "Client", "Options", "TurnEvent", "VERSION", "connect", "readSession", "Mode", "Event",
        "default",
    }  # fmt: skip
    assert "leaked" not in old.exports  # the symlinked file was not read
    client = old.exports["Client"]
    assert client.kind == "class" and client.members is not None
    members = {m.name: m for m in client.members}
    assert set(members) == {"options", "constructor", "static create", "request", "close"}
    request = members["request"].signatures[0]
    assert request.text == (
        "request<TResult, TParams extends Record<string, unknown> = Record<string, unknown>>"
        "(method: string, params?: TParams): Promise<TResult>"
    )  # all lines of the multi-line generic signature, on one
    assert [p.optional for p in request.params or ()] == [False, True]
    connect = old.exports["connect"]
    assert [s.text for s in connect.signatures] == [
        "function connect(url: string): Client",
        "function connect(transport: Transport, options?: Options): Client",
    ]
    assert old.exports["default"].kind == "class"  # `export default Client`
    assert (
        old.exports["readSession"].signatures[0].text == "function parse(text: string): SessionId"
    )
    assert old.exports["Mode"].type_only and old.exports["Mode"].kind == "type"
    assert old.exports["Event"].kind == "re-export"  # from a package this file does not carry
    assert old.exports["VERSION"].signatures[0].text == "const VERSION: string"  # via export *
    linked = tmp_path / "linked-entry"
    linked.mkdir()
    (linked / "index.d.mts").symlink_to(old_file)
    with pytest.raises(MirrorError, match="cannot read"):
        api_surface.read(linked / "index.d.mts", node_toolchain, cache)

    new_index = (
        OLD_DTS.replace(
            "    close(): void;\n", "    close(): void;\n    steer(text: string): void;\n"
        )
        .replace("    model?: string;\n", "    model?: string;\n    region: string;\n")
        .replace("export declare function connect(url: string): Client;\n", "")
        .replace(
            "declare function parse(text: string)",
            "declare function parse(text: string, strict?: boolean)",
        )
    )
    new = api_surface.read(_write_pair(tmp_path / "new", new_index), node_toolchain, cache)
    assert changes(old, new) == {
        ("Client.steer", "member added", ADDITIVE),
        ("default.steer", "member added", ADDITIVE),
        ("Options.region", "member added", IMPLEMENTERS),
        ("connect", "overload removed", BREAKING),
        ("readSession", "optional parameter added", ADDITIVE),
    }


# --- the sample's releases, end to end ------------------------------------------------------

_LINE = re.compile(r"^- `([^`]+)`: (.+?) \((additive|breaking|breaking for implementers)\)", re.M)


@pytest.mark.slow
def test_notes_between_consecutive_sample_releases(
    project, tmp_path, capsys, sample_upstream
) -> None:
    up = sample_upstream(tmp_path / "upstream.git")
    origin = tmp_path / "origin.git"
    proc.run(["git", "clone", "-q", "--bare", str(up.bare), str(origin)])
    cfg = project.config()
    ledger = MirrorLedger(cfg.mirror_ledger)
    for name, commit in up.tags.items():
        ledger.add_tag(name, commit, commit)
    ledger.save()

    releases = sample.DEFAULT_RELEASES
    for previous, release in itertools.pairwise(releases):
        text = release_notes.main(
            from_tag=up.tag(previous.cli), to_tag=up.tag(release.cli), origin=str(origin), cfg=cfg
        )
        assert capsys.readouterr().out == text  # the draft goes to stdout, diagnostics to stderr
        assert text.startswith(f"## {release.sdk}\n")
        assert set(_LINE.findall(text)) == set(release.changes), release.note
        severities = {severity for *_, severity in release.changes}
        expected = next(
            (s for s in (BREAKING, IMPLEMENTERS, ADDITIVE) if s in severities), "unchanged"
        )
        assert f"Interface change: **{expected}**." in text
        # The bundle's one-letter helper exports are not API.
        assert not re.search(r"`[a-z]`", text), text
        if release.cli == "0.17.0":
            assert "- `KimiClient.steer`: member added (additive): `steer(" in text
    # --json: the same delta and entry as one versioned document on stdout
    text = release_notes.main(
        from_tag=up.tag(previous.cli),
        to_tag=up.tag(release.cli),
        origin=str(origin),
        cfg=cfg,
        json_out=True,
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1 and doc["markdown"] == text
    assert (doc["from"]["tag"], doc["to"]["sdk_version"]) == (up.tag(previous.cli), release.sdk)
    changes = {(c["subject"], c["change"], c["severity"]) for c in doc["changes"]}
    assert changes == set(release.changes)


# --- the compiler's verdict decides (pure: a verdict in, severities out) ----------------------


def test_private_members_are_not_compared() -> None:
    from sdkmirror.release.declarations.compat import without_private_members

    text = (
        "declare class Log<T> {\n    #private;\n    private readonly limit;\n"
        "    protected dropped: number;\n    push(event: T): number;\n}\n"
    )
    assert (
        without_private_members(text) == "declare class Log<T> {\n    push(event: T): number;\n}\n"
    )


def test_the_compilers_verdict_sets_each_severity_and_says_why() -> None:
    from sdkmirror.release.declarations.compat import Compatibility, Failure

    getter = Member("model", "accessor", False, (Signature("get model(): string"),))
    old = with_(
        holder("interface", "Options", prop("url", "string | undefined", optional=True)),
        holder("class", "Client", CONNECT, prop("model", "string")),
    )
    new = with_(
        holder(
            "interface",
            "Options",
            prop("url", "string", optional=True),
            prop("region", "string"),
        ),
        holder("class", "Client", CONNECT, getter),  # a writable field turned into a getter
    )
    missing = Failure("write", None, 2741, "Property 'region' is missing in type 'old.Options'")
    readonly = Failure("setter", "model", 2540, "Cannot assign to 'model'")
    verdict = Compatibility(
        failures={"Options": (missing,), "Client": (readonly,)}, inputs=frozenset({"Options"})
    )
    delta = release_notes.diff(old, new, verdict)
    found = {(c.subject, c.change, c.severity) for c in delta.changes}
    assert found == {
        ("Options.url", "signature changed", ADDITIVE),  # `| undefined` dropped: compatible
        ("Options.region", "member added", BREAKING),  # required, on an input type
        ("Client.model", "no longer writable", BREAKING),  # the compiler names the change
    }
    why = {c.subject: c.why for c in delta.changes if c.severity == BREAKING}
    assert "code that builds, passes or implements `Options`" in why["Options.region"]
    assert "TS2741: Property 'region' is missing" in why["Options.region"]
    assert why["Client.model"].startswith("code that assigns `Client.model` no longer compiles")
    assert delta.classification == BREAKING
    # A failure no textual change explains (a type it uses changed) is a change of its own.
    nested = Failure("write", None, 2322, "Type 'old.Input' is not assignable to 'new.Input'")
    quiet = Compatibility(failures={"Input": (nested,)}, inputs=frozenset({"Input"}))
    [change] = release_notes.diff(BASE, BASE, quiet).changes
    assert (change.subject, change.change, change.severity) == (
        "Input",
        "no longer accepts what old code passes",
        BREAKING,
    )
    # The same failure on a type that is only handed out is not breaking.
    output_only = Compatibility(failures={"Options": (missing,)})
    assert release_notes.diff(old, new, output_only).classification == ADDITIVE
