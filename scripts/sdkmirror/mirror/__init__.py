"""The mirror itself: tags, the ledger, sync, verify, patch branches."""
