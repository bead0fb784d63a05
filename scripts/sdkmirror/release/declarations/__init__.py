"""The published declarations: emit, bundle, consumer check, surface, compatibility."""
