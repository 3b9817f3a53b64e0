"""Analyst dashboards (web app and Grafana JSON)."""
