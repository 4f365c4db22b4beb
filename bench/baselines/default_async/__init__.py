"""The default-async baseline: `async def` routes, a default httpx.AsyncClient, asyncpg."""
