"""Helpers for the services' tests (they need the dev dependencies, pytest among them)."""
