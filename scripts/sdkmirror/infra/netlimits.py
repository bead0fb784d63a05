"""How long a network call may take before it is abandoned, and what it said when it failed.

One place for the limits, so every npm registry read fails within seconds on an unreachable
registry instead of retrying for over a minute in silence.
"""

from __future__ import annotations

import re

# npm registry reads: no retries, and a request that takes longer than this is a failure.
NPM_FETCH_TIMEOUT_MS = 20_000
NPM_READ_FLAGS = ("--fetch-retries=0", f"--fetch-timeout={NPM_FETCH_TIMEOUT_MS}")

_NPM_CODE = re.compile(r"^npm (?:ERR!|error) code (\S+)\s*$", re.M)
_NPM_LINE = re.compile(r"^npm (?:ERR!|error) (?!code )(?!A complete log)(.+)$", re.M)


def npm_reason(output: str) -> str:
    """npm's own `code` line and the line after it (`ECONNREFUSED: request to ... failed`),
    rather than its last line, which only says where the debug log went."""
    code = _NPM_CODE.search(output)
    lines = [m.group(1).strip() for m in _NPM_LINE.finditer(output)]
    # The line naming the request and the reason beats npm's syscall/errno bookkeeping.
    detail = next((ln for ln in lines if "request to" in ln or "reason:" in ln), "")
    detail = detail or next((ln for ln in lines if not ln.startswith(("syscall", "errno"))), "")
    detail = detail or (lines[0] if lines else "")
    if code:
        return f"npm error code {code.group(1)}" + (f": {detail}" if detail else "")
    return detail or (output.strip().splitlines() or ["npm failed without a message"])[-1]
