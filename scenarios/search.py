"""Filtered search: GET /search, one category, price <= 500.00, newest 20 first (run with --index on,off)."""

import random

from locust import FastHttpUser, constant, task

from targets.common.schema import ITEM_CATEGORIES, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_PRICE


class SearchUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def search(self) -> None:
        category = random.randint(1, ITEM_CATEGORIES)
        path = f"/search?category={category}&max_price={SEARCH_MAX_PRICE}&limit={SEARCH_DEFAULT_LIMIT}"
        self.client.get(path, name="/search")
