"""The workspace's other packages: plain-JavaScript siblings the SDK bundles, and a
published types-only package its declarations import."""

from __future__ import annotations

KAOS = """export function kaosPlatform() {
  return { os: "sample", shell: "sh" };
}
"""

AGENT_CORE = """import { kaosPlatform } from "@moonshot-ai/kaos";

export function runTurn(session, text) {
  const platform = kaosPlatform();
  return { session: session.id, text, platform: platform.os };
}

export function newSession(model) {
  return { id: `session-${model}`, model };
}
"""


# Stands in for the published type sources the real declarations import (undici, the MCP SDK):
# published, but not a runtime dependency of the SDK.
VENDOR_TYPES = """export interface TransportOptions {
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface Transport {
  send(body: string, options?: TransportOptions): Promise<string>;
  close(): Promise<void>;
}
"""
