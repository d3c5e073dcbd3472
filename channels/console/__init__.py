"""Agent console for the human handoff: ``python -m channels.console`` (see docs/handoff.md)."""
