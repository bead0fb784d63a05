"""Mechanics with no mirror knowledge: processes, git, console, locks, toolchains, clients."""
