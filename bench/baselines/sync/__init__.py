"""The sync baseline: `def` routes, requests, psycopg 3 with psycopg_pool."""
