"""Tests against real parts: the Tansu broker, PostgreSQL, the CLI as a process."""
