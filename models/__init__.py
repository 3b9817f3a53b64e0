"""Attention classifier: network, training, saving, inference and seed data."""
