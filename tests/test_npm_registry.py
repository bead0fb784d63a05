"""The registry reads a publish makes (a version's integrity, the dist-tags), against a
loopback HTTP server that checks each request."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sdkmirror.core.errors import RemoteError
from sdkmirror.infra import npm_registry

NAME = "@botiverse/kimi-code-sdk"
PATH = "/@botiverse/kimi-code-sdk"  # as the server decodes "/@botiverse%2fkimi-code-sdk"
DOC = {
    "name": NAME,
    "dist-tags": {"latest": "0.9.4", "next": "0.10.0-rc.1"},
    "versions": {
        "0.9.4": {"dist": {"integrity": "sha512-AAA", "tarball": "x"}},
        "0.10.0-rc.1": {"dist": {"tarball": "y"}},
    },
}
ENV = {"HOME": "/nonexistent", "NODE_AUTH_TOKEN": "tok-123"}


def test_reads_send_the_token_to_the_registry_named_and_parse_npm_views_fields(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(
        PATH, headers={"Authorization": "Bearer tok-123", "Accept": "application/json"}
    ).respond_with_json(DOC)
    reg = httpserver.url_for("/")
    assert npm_registry.integrity(NAME, "0.9.4", reg, env=ENV) == "sha512-AAA"
    assert npm_registry.integrity(NAME, "0.9.5", reg, env=ENV) is None  # no such version
    assert npm_registry.integrity(NAME, "0.10.0-rc.1", reg, env=ENV) is None  # no integrity
    assert npm_registry.dist_tags(NAME, reg, env=ENV) == DOC["dist-tags"]
    assert len(httpserver.log) == 4
    httpserver.check_assertions()


def test_without_a_token_no_authorization_is_sent(httpserver: HTTPServer) -> None:
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return Response(json.dumps(DOC), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(answer)
    npm_registry.dist_tags(NAME, httpserver.url_for("/"), env={"HOME": "/nonexistent"})
    assert [r.headers.get("Authorization") for r in seen] == [None]
    assert seen[0].environ["REQUEST_URI"] == "/@botiverse%2fkimi-code-sdk"  # as npm escapes it


def test_a_package_the_registry_lacks_is_none_and_an_error_is_one_line(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(PATH).respond_with_data("{}", status=404)
    reg = httpserver.url_for("/")
    assert npm_registry.integrity(NAME, "0.9.4", reg, env=ENV) is None
    assert npm_registry.dist_tags(NAME, reg, env=ENV) == {}
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_data("down", status=503)
    with pytest.raises(RemoteError) as err:
        npm_registry.integrity(NAME, "0.9.4", reg, env=ENV)
    assert str(err.value) == f"cannot read {NAME}@0.9.4 from {reg}: HTTP 503 SERVICE UNAVAILABLE"


def test_a_redirect_never_carries_the_token_along(httpserver: HTTPServer) -> None:
    elsewhere = HTTPServer(host="127.0.0.1", port=0)
    elsewhere.start()
    try:
        seen: list[str | None] = []

        def answer(request: Request) -> Response:
            seen.append(request.headers.get("Authorization"))
            return Response(json.dumps(DOC), content_type="application/json")

        elsewhere.expect_request("/moved").respond_with_handler(answer)
        httpserver.expect_request(PATH).respond_with_data(
            "", status=302, headers={"Location": elsewhere.url_for("/moved")}
        )
        assert npm_registry.dist_tags(NAME, httpserver.url_for("/"), env=ENV) == DOC["dist-tags"]
        assert seen == [None]
    finally:
        elsewhere.clear()
        elsewhere.stop()


def test_the_users_npm_proxy_setting_carries_the_read(httpserver: HTTPServer) -> None:
    # The registry's host does not resolve: only a proxy can answer for it.
    httpserver.expect_request(PATH).respond_with_json(DOC)
    env = {**ENV, "npm_config_proxy": httpserver.url_for("/")}
    assert npm_registry.dist_tags(NAME, "http://registry.invalid/", env=env) == DOC["dist-tags"]
    env["npm_config_noproxy"] = "registry.invalid"
    with pytest.raises(RemoteError, match=r"cannot read the dist-tags of .* from http://registry"):
        npm_registry.dist_tags(NAME, "http://registry.invalid/", env=env)
