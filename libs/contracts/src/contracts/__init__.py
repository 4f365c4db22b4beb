"""Ordermesh contracts: generated gRPC code, event schemas and broker names."""
