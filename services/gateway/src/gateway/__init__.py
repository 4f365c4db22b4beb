"""Ordermesh gateway: the public HTTP/JSON API (auth, limits, fan-out over gRPC and HTTP)."""
