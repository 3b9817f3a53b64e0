"""Unit tests, one module per pipeline module."""
