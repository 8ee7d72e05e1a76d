"""Multiple reads: GET /queries?queries=20, twenty single-row queries per request (TechEmpower test 3)."""

from locust import FastHttpUser, constant, task

QUERIES = 20


class QueriesUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def twenty_rows(self) -> None:
        self.client.get(f"/queries?queries={QUERIES}", name="/queries")
