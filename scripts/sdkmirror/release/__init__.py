"""Republishing one mirror tag: plan, build, upload, check, notes, tag, GitHub release."""
