"""Fortunes: GET /fortunes, read all rows, add one, sort, render escaped HTML (TechEmpower test 4)."""

from locust import FastHttpUser, constant, task


class FortunesUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def fortunes(self) -> None:
        self.client.get("/fortunes", name="/fortunes")
