"""Single-row read: GET /db, one query per request (TechEmpower test 2)."""

from locust import FastHttpUser, constant, task


class DbUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def single_row(self) -> None:
        self.client.get("/db", name="/db")
