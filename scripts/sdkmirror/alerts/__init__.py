"""Alerts from sync and smoke runs, kept as one GitHub issue each."""
