"""Shop traffic: mostly item pages, some category listings, a few orders (writes)."""

from __future__ import annotations

import random

from locust import FastHttpUser, task

ITEMS = 1000
CATEGORIES = 10


class Shopper(FastHttpUser):
    @task(10)
    def item(self) -> None:
        # One row per request: `name=` groups the thousand URLs as one endpoint in the figures.
        self.client.get(f"/items/{random.randint(1, ITEMS)}", name="/items/[id]")

    @task(3)
    def category(self) -> None:
        self.client.get(f"/categories/{random.randint(1, CATEGORIES)}/items", name="/categories/[id]/items")

    @task(1)
    def order(self) -> None:
        self.client.post("/orders", json={"item_id": random.randint(1, ITEMS), "quantity": 1}, name="/orders")
