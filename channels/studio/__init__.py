"""Content studio: staff edit what the assistant says, publish it, and see how it does (docs/studio.md)."""
