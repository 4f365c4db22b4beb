"""Ordermesh notify service: consumes order events and records each notification once."""
