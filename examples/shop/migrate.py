"""``python migrate.py`` (from examples/shop): create the shop's tables from schema.sql (safe to run twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shop.db import make_engine
from sqlalchemy import text

SCHEMA = Path(__file__).parent / "shop" / "schema.sql"


async def migrate() -> None:
    engine = make_engine()
    statements = [s.strip() for s in SCHEMA.read_text(encoding="utf-8").split(";") if s.strip()]
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(migrate())
    print("shop: schema applied")
