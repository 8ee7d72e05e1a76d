"""``python -m shop.migrate``: create the shop's tables from schema.sql (safe to run twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from shop.db import make_engine

SCHEMA = Path(__file__).with_name("schema.sql")


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
