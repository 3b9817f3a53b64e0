"""attnwatch tests."""
