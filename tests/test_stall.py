"""Bounded network waits: a remote that answers the listing and then hangs is abandoned after
the stall time (exit 4, one line naming the remote and the stage), on ssh and file remotes."""

from __future__ import annotations

import shutil

from gitrepos import TAG, git, seed

FAKE_SSH = """#!/bin/sh
# A remote over "ssh": the service named `hang` answers the listing, then hangs (it never
# reads what the client sends and never answers: a stuck server after the ref advertisement).
# Other services are served in full.
for last; do :; done
service=${last%% *}
service=${service#git-}
path=$(printf '%s' "$last" | sed "s/^[a-z-]* '\\(.*\\)'$/\\1/")
unset GIT_PROTOCOL
if [ "$service" != "{hang}" ]; then exec git "$service" "$path"; fi
git "$service" --advertise-refs "$path"
touch "{events}/listed.$$"
exec 3>&1
cat >/dev/null
# A push sends its pack and stops writing; the stuck server still never answers it.
[ "$service" = receive-pack ] && exec tail -f /dev/null
"""


def fake_ssh(tmp_path, hang):
    events = tmp_path / "events"
    events.mkdir()
    ssh = tmp_path / "bin" / "ssh"
    ssh.parent.mkdir()
    # git children inherit only an allow-list of variables: the settings are written in
    ssh.write_text(FAKE_SSH.replace("{hang}", hang).replace("{events}", str(events)))
    ssh.chmod(0o755)
    return {"GIT_SSH_COMMAND": str(ssh)}, events


def test_a_fetch_that_hangs_after_the_listing_is_abandoned(project, repos, tmp_path):
    seed(repos, "0.14.2")
    env, events = fake_ssh(tmp_path, "upload-pack")
    url = f"ssh://hung.invalid{repos.upstream}"

    cp = project.invoke(
        "sync", "--upstream", url, "--origin", str(repos.origin),
        env={**env, "SDKMIRROR_STALL_SECONDS": "1"},
    )  # fmt: skip

    assert cp.returncode == 4, cp.stderr
    last = cp.stderr.strip().splitlines()[-1]
    assert f"upstream {url} stalled: no progress for 1s while fetching objects" in last
    # Upstream's listing without the lock, again under it (the run had work), and the fetch's.
    assert len(list(events.iterdir())) == 3
    assert repos.origin_refs() == {}


def test_a_push_that_hangs_after_the_listing_is_abandoned(project, repos, tmp_path):
    seed(repos, "0.14.2")
    env, events = fake_ssh(tmp_path, "receive-pack")
    url = f"ssh://hung.invalid{repos.origin}"

    cp = project.invoke("sync", "--origin", url, env={**env, "SDKMIRROR_STALL_SECONDS": "1"})

    assert cp.returncode == 4, cp.stderr
    last = cp.stderr.strip().splitlines()[-1]
    assert f"origin {url} stalled: no progress for 1s while pushing" in last
    assert len(list(events.iterdir())) == 1  # origin answered the push's listing, then hung
    assert f"refs/tags/{TAG.format('0.14.2')}" not in repos.origin_refs()


def test_a_bad_stall_setting_is_one_usage_error(project, repos):
    seed(repos, "0.14.2")
    cp = project.invoke(
        "sync", "--origin", str(repos.origin), env={"SDKMIRROR_STALL_SECONDS": "soon"}
    )
    assert cp.returncode == 2
    assert "SDKMIRROR_STALL_SECONDS='soon' is not a number of seconds" in cp.stderr
    assert shutil.which("git") and git("--version")
