"""What the workflows ask of the library: job outputs, so no logic lives in YAML.

Each function computes values from configuration, reports or the event's environment, and
`write_outputs` hands them to `$GITHUB_OUTPUT` (or prints them outside Actions).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdkmirror.alerts.alert import load_sync_report
from sdkmirror.core import identifiers
from sdkmirror.core.config import Config
from sdkmirror.core.errors import ConfigError, UsageError, VerificationFailed
from sdkmirror.infra import console, gitio, proc
from sdkmirror.infra.gitio import ls_remote
from sdkmirror.mirror import source
from sdkmirror.mirror.ledger import MirrorLedger

OUTPUT_ENV = "GITHUB_OUTPUT"


def write_outputs(values: Mapping[str, str]) -> None:
    """Append `key=value` lines to `$GITHUB_OUTPUT`; print them when it is not set."""
    lines = []
    for key, value in values.items():
        if "\n" in value:
            delim = f"EOF_{uuid.uuid4().hex}"
            lines.append(f"{key}<<{delim}\n{value}\n{delim}\n")
        else:
            lines.append(f"{key}={value}\n")
    path = os.environ.get(OUTPUT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(lines)
        for line in lines:
            console.info(f"output {line.rstrip()}")
    else:  # run by hand: the outputs are the result
        console.result("".join(lines).rstrip("\n"))


def session_name(node: str, pnpm: str) -> str:
    return f"smoke(node='{node}', pnpm='{pnpm}')"


def smoke_matrix(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """One matrix entry per toolchain of `[tool.sdkmirror] toolchains`, in table order."""
    return {
        "include": [
            {
                "session": session_name(t.node, t.pnpm),
                "name": f"node {t.node}, pnpm {t.pnpm}",
                "slug": f"node-{t.node}-pnpm-{t.pnpm}",
                "allow_failure": t.allow_failure,
            }
            for t in cfg.toolchains
        ]
    }


def nox_smoke_sessions(cfg: Config) -> list[str]:
    """The `smoke(...)` sessions the noxfile really defines, from `nox --list --json`."""
    result = proc.run(
        ["nox", "--list", "--json", "-f", str(cfg.root / "noxfile.py"), "-s", "smoke"],
        cwd=cfg.root,
        what="`nox --list --json`",
    )
    try:
        sessions = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise UsageError(f"`nox --list --json` printed no JSON ({exc.msg})") from exc
    return [s["session"] for s in sessions if str(s.get("session", "")).startswith("smoke(")]


def checked_matrix(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """The matrix, refused unless the noxfile defines exactly these smoke sessions."""
    matrix = smoke_matrix(cfg)
    wanted = [e["session"] for e in matrix["include"]]
    listed = nox_smoke_sessions(cfg)
    if sorted(wanted) != sorted(listed):
        missing = sorted(set(wanted) - set(listed)) or sorted(set(listed) - set(wanted))
        raise ConfigError(
            f"the toolchain table and the noxfile's smoke sessions differ ({missing[0]}); "
            "build the smoke sessions from [tool.sdkmirror] toolchains"
        )
    return matrix


def matrix_outputs(cfg: Config, env: Mapping[str, str]) -> dict[str, str]:
    """The smoke matrix, and what every cell builds: `INPUT_REF` (default: the mirror branch)
    of this repository (the mirror)."""
    upstream = repo_url_from_env(env)
    if not upstream:
        raise UsageError("GITHUB_SERVER_URL and GITHUB_REPOSITORY must name the mirror repository")
    return {
        "matrix": json.dumps(checked_matrix(cfg), separators=(",", ":")),
        "ref": env.get("INPUT_REF", "").strip() or cfg.mirror_branch,
        "upstream": upstream,
    }


def repo_url_from_env(env: Mapping[str, str]) -> str:
    server, repo = env.get("GITHUB_SERVER_URL", ""), env.get("GITHUB_REPOSITORY", "")
    return f"{server}/{repo}.git" if server and repo else ""


def sync_outputs(cfg: Config, report_path: str) -> dict[str, str]:
    """Whether the sync changed anything, and which ref the smoke matrix should build."""
    if not os.path.exists(report_path):
        console.warn(f"no sync report at {report_path}: the sync did not get far enough")
        return {"changed": "false", "ledger_changed": "false", "status": "failed", "smoke_ref": ""}
    sync = load_sync_report(report_path)
    versioned = [
        (v, t["name"]) for t in sync.get("new_tags", []) if (v := cfg.tags.version_of(t["name"]))
    ]
    ref = max(versioned)[1] if versioned else cfg.mirror_branch
    return {
        "changed": str(bool(sync.get("changed"))).lower(),
        "ledger_changed": str(bool(sync.get("ledger_changed"))).lower(),
        "status": str(sync.get("status")),
        "smoke_ref": ref,
    }


def mirror_tag_for_publish_tag(cfg: Config, publish_tag: str, origin: str | None = None) -> str:
    """The mirror tag on the publish tag's commit (the newest, should several share it).

    Read from origin with `ls-remote`, so the workflow's checkout of main needs no tags.
    """
    url = gitio.origin_url(cfg, origin)
    commit = ls_remote(url, [f"refs/tags/{publish_tag}"], name="origin").commit_of_tag(publish_tag)
    if commit is None:
        raise UsageError(
            f"publish tag {publish_tag!r} is not on origin; make it with "
            "`invoke release.tag --source-tag TAG --push`"
        )
    tags = [
        (v, name)
        for name, rec in MirrorLedger(cfg.mirror_ledger).tags.items()
        if rec.commit == commit and (v := cfg.tags.version_of(name))
    ]
    if not tags:
        raise UsageError(
            f"{publish_tag} points at {commit[:12]}, which no mirror tag in the ledger names; "
            "make publish tags with `invoke release.tag --source-tag TAG`"
        )
    return max(tags)[1]


def sdk_version_on_origin(cfg: Config, url: str, tag: str) -> str:
    """The SDK's package.json version at `tag`, fetched shallowly from origin into a scratch
    repository: nobody's checkout is touched."""
    with tempfile.TemporaryDirectory(prefix="sdkmirror-version-") as tmp:
        scratch = source.Scratch(Path(tmp) / "src.git")
        commit = scratch.fetch(url, f"refs/tags/{tag}")
        text = scratch.show(commit, f"{cfg.sdk_dir}/package.json")
    return source.sdk_version(text, where=tag, sdk_dir=cfg.sdk_dir)


def publish_args(cfg: Config, env: Mapping[str, str], origin: str | None = None) -> dict[str, str]:
    """`invoke publish` arguments from a manual dispatch of the publish workflow.

    `source_tag` names a mirror tag, or a publish tag `publish-sdk/vX.Y.Z`: the mirror tag on
    the same commit, and when the SDK there says X.Y.Z that is the expected version;
    otherwise the tag was made with `release.tag --version-override`, and X.Y.Z is published
    as an override. `dry_run` defaults to true. Any other event is refused: a tag trigger
    would run the workflow file of the tagged commit, which is upstream source.
    """
    event = env.get("GITHUB_EVENT_NAME", "")
    if event != "workflow_dispatch":
        raise UsageError(f"publishing runs on a manual dispatch only, not on {event!r}")
    tag = env.get("INPUT_SOURCE_TAG", "").strip()
    dry = env.get("INPUT_DRY_RUN", "true").strip().lower() != "false"
    version = cfg.publish_tags.version_of(tag)
    expected = override = reason = ""
    if version is not None:
        source = mirror_tag_for_publish_tag(cfg, tag, origin)
        # The publish tag sits on the mirror tag's commit (just checked): read the SDK there.
        sdk_version = sdk_version_on_origin(cfg, gitio.origin_url(cfg, origin), tag)
        if sdk_version == str(version):
            expected = sdk_version
        else:
            override, reason = str(version), f"publish tag {tag} on SDK {sdk_version}"
    elif cfg.tags.version_of(tag) is not None:
        source = tag
    else:
        raise UsageError(
            f"{tag!r} is neither a publish tag like {cfg.publish_tags.name_for('1.2.3')} nor a "
            f"mirror tag like {cfg.tags.name_for('1.2.3')}; pass one of those"
        )
    return {
        "source_tag": source,
        "expected_version": expected,
        "version_override": override,
        "override_reason": reason,
        "dry_run": str(dry).lower(),
    }


BUILD_FIELDS = (
    "npm_name",
    "npm_version",
    "sdk_version",
    "upstream_tag",
    "commit",
    "integrity",
    "shasum",
    "tarball",
    "dist_tag",
    "override_reason",
)


def build_outputs(cfg: Config, manifest_path: str) -> dict[str, str]:
    """The release facts of a `publish.build` manifest, each checked, as job outputs.

    The build job runs upstream code, so its manifest is data to check: every value that
    leaves the job must have the shape the later jobs expect, or nothing leaves at all.
    """
    from sdkmirror.release.record import check_facts

    try:
        data = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"no build manifest at {manifest_path}; run `invoke publish.build`"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{manifest_path} is not a JSON build manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != "publish-build" or data.get("schema") != 1:
        raise UsageError(f"{manifest_path} is not a publish-build manifest of schema 1")

    def text(key: str, *, optional: bool = False) -> str | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise UsageError(f"{manifest_path}: {key} must be a string, got {type(value).__name__}")
        return value

    facts = check_facts(
        cfg,
        npm_version=text("npm_version") or "",
        upstream_tag=text("upstream_tag") or "",
        commit=text("commit") or "",
        integrity=text("integrity") or "",
        registry=None,
        npm_name=text("npm_name"),
        sdk_version=text("sdk_version"),
        dist_tag=text("dist_tag"),
        override_reason=text("override_reason", optional=True) or None,
    )
    tarball, shasum = text("tarball") or "", text("shasum") or ""
    if not identifiers.is_tarball_name(tarball):
        raise UsageError(f"{manifest_path}: tarball {tarball[:80]!r} is not a plain .tgz file name")
    if not identifiers.is_hex40(shasum):
        raise UsageError(f"{manifest_path}: shasum is not 40 lowercase hex digits")
    tarball_path = Path(manifest_path).parent / tarball
    if not tarball_path.is_file() or tarball_path.is_symlink():
        raise UsageError(f"{manifest_path}: names {tarball}, which is not a file next to it")
    return {
        "npm_name": facts.npm_name,
        "npm_version": facts.npm_version,
        "sdk_version": facts.sdk_version,
        "upstream_tag": facts.upstream_tag,
        "commit": facts.commit,
        "integrity": facts.integrity,
        "shasum": shasum,
        "tarball": tarball,
        "dist_tag": facts.dist_tag,
        "override_reason": facts.override_reason or "",
    }


def upload_outputs(
    cfg: Config,
    tarball_dir: str,
    *,
    source_tag: str,
    version_override: str | None = None,
    override_reason: str | None = None,
    origin: str | None = None,
    registry: str | None = None,
) -> dict[str, str]:
    """Upload the one tarball the build job left in `tarball_dir` and return the release facts.

    The build job ran upstream code, so nothing it computed is taken: the version is planned
    here from the tag (the arguments were computed before the build ran), and every other
    fact comes from `publish.upload`'s checks of its own private copy of the bytes."""
    from sdkmirror.infra import npm_registry
    from sdkmirror.infra.toolchain import provision
    from sdkmirror.release.publish import upload as publish_upload
    from sdkmirror.release.publish.plan import check_registry

    found = sorted(p for p in Path(tarball_dir).iterdir() if p.name.endswith(".tgz"))
    if len(found) != 1 or not identifiers.is_tarball_name(found[0].name):
        names = ", ".join(p.name[:80] for p in found) or "none"
        raise UsageError(f"{tarball_dir} must hold exactly one .tgz, it holds {names}")
    expected = publish_upload.plan_expected(
        cfg, source_tag, origin=origin, version_override=version_override or None
    )
    reg = check_registry(registry or None)
    tc = provision(cfg.toolchains[0], cfg.cache_dir)
    result = publish_upload.upload(
        tc,
        found[0],
        None,
        expected=expected,
        registry=reg or npm_registry.default_registry(tc),
        dry_run=False,
    )
    return {
        "npm_name": result.npm_name,
        "npm_version": result.npm_version,
        "sdk_version": expected.sdk_version,
        "upstream_tag": expected.source_tag,
        "commit": expected.commit,
        "integrity": result.integrity,
        "tarball": found[0].name,
        "dist_tag": result.dist_tag,
        "override_reason": override_reason or "",
    }


def sandbox_setup() -> None:
    """Make bwrap work on a CI runner: install bubblewrap when it is missing, and lift the
    AppArmor restriction on unprivileged user namespaces (Ubuntu 24.04 runners) when set.
    Runs before any upstream code; fails (exit 9) when bwrap still cannot sandbox."""
    from sdkmirror.infra import sandbox

    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sandbox.bwrap_path() is None:
        with console.step("installing bubblewrap"):
            proc.run([*sudo, "apt-get", "update", "-q"], what="apt-get update", timeout=600)
            proc.run(
                [*sudo, "apt-get", "install", "-y", "-q", "bubblewrap"],
                what="apt-get install bubblewrap",
                timeout=600,
            )
    if sandbox.apparmor_restricts_userns():
        with console.step("allowing unprivileged user namespaces (AppArmor)"):
            proc.run(
                [*sudo, "sysctl", "-w", "kernel.apparmor_restrict_unprivileged_userns=0"],
                what="sysctl kernel.apparmor_restrict_unprivileged_userns=0",
            )
    sandbox.problem.cache_clear()
    why = sandbox.problem()
    if why is not None:
        raise sandbox.SandboxUnavailable(why)
    console.info(f"bwrap works ({sandbox.PROFILE_VERSION})")


def lint_workflows(cfg: Config) -> None:
    """Run actionlint, then zizmor without network as an auditor; fail on any actionlint
    finding and on any zizmor finding above low."""
    workflows = cfg.root / ".github" / "workflows"
    for argv in (
        ["actionlint", "-no-color"],
        [
            "zizmor",
            "--offline",
            "--no-progress",
            "--persona",
            "auditor",
            "--min-severity",
            "medium",
            str(workflows),
        ],
    ):
        with console.step(f"{argv[0]} over {workflows}"):
            result = proc.run(argv, cwd=cfg.root, check=False)
        if result.returncode != 0:
            console.info(result.output)
            raise VerificationFailed(f"{argv[0]} reported findings in {workflows}; fix them")
