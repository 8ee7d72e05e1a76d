"""``python seed.py`` (from examples/shop): 10 categories, 1,000 items with stock; the same rows every time."""

from __future__ import annotations

import asyncio
import random

from shop.db import make_engine
from sqlalchemy import text

CATEGORIES = 10
ITEMS = 1000
STOCK = 1_000_000  # enough that orders under load never run an item out


async def seed() -> None:
    rng = random.Random(42)
    engine = make_engine()
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE orders, item, category RESTART IDENTITY CASCADE"))
        await conn.execute(
            text("INSERT INTO category (name) VALUES (:name)"),
            [{"name": f"category {i}"} for i in range(1, CATEGORIES + 1)],
        )
        await conn.execute(
            text("INSERT INTO item (category_id, name, price_cents, stock) VALUES (:c, :n, :p, :s)"),
            [
                {"c": rng.randint(1, CATEGORIES), "n": f"item {i}", "p": rng.randint(100, 99_999), "s": STOCK}
                for i in range(1, ITEMS + 1)
            ],
        )
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(seed())
    print(f"shop: seeded {CATEGORIES} categories, {ITEMS} items")
