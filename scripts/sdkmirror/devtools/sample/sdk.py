"""The SDK's runtime source per release: plain JavaScript the mini bundler understands."""

from __future__ import annotations

from sdkmirror.devtools.sample.api import client_methods
from sdkmirror.devtools.sample.releases import PROTOCOL_NAME, TOML_NAME, VENDOR_TYPES_NAME, Release


def sdk_index(release: Release, *, broken_import: bool = False) -> str:
    """The SDK's runtime source at `release`: plain JavaScript the mini bundler understands."""
    core = ["newSession", "runTurn"] + (["runTurnWithTools"] if broken_import else [])
    generic = [m for m in client_methods(release.api) if m != "loadConfig"]
    methods = "".join(
        f"\n  {name}(...args) {{\n"
        f"    return Promise.resolve(runTurn(this.session, `{name}:${{args.length}}`));\n"
        "  }\n"
        for name in generic
    )
    parts = [
        f'import {{ {", ".join(core)} }} from "@moonshot-ai/agent-core";\n',
        f'import {{ parse }} from "{TOML_NAME}";\n',
        f'import {{ ToolInputDisplaySchema }} from "{PROTOCOL_NAME}";\n',
        f'import type {{ SessionId, TurnEvent }} from "{PROTOCOL_NAME}";\n',
        f'import type {{ Transport }} from "{VENDOR_TYPES_NAME}";\n',
        'import { SDK_VERSION } from "#/meta";\n',
        "\n",
        "export type ClientOptions = {\n  model?: string;\n  baseUrl?: string;\n};\n",
        "\nexport const VERSION = SDK_VERSION;\n",
        "\nexport class KimiClient {\n"
        "  constructor(options) {\n"
        '    this.options = { model: "kimi-latest", ...options };\n'
        "    this.session = newSession(this.options.model);\n"
        "  }\n\n"
        "  get model() {\n    return this.options.model;\n  }\n\n"
        "  loadConfig(text) {\n    return parse(text);\n  }\n" + methods + "}\n",
        "\nexport function createClient(target, options) {\n"
        '  const opts = typeof target === "object" && target && !("send" in target) ? target '
        ": options;\n"
        "  return new KimiClient(opts);\n}\n",
    ]
    if "legacyPrompt" in release.exports:
        parts.append(
            "\nexport function legacyPrompt(client, text) {\n"
            "  return Promise.resolve(runTurn(client.session, text).text);\n}\n"
        )
    if "isTurnEvent" in release.exports:
        parts.append(
            "\nexport function isTurnEvent(value) {\n"
            '  return typeof value === "object" && value !== null && "type" in value;\n}\n'
        )
    parts.append(
        "\nfunction parseConfig(text) {\n  return parse(text);\n}\n"
        "\nexport { parseConfig as readConfig, ToolInputDisplaySchema };\n"
        "export default createClient;\n"
    )
    return "".join(parts)
