"""Every task's request succeeds, then the task's own code raises (the response lacks the key it reads)."""

from locust import FastHttpUser, constant, task


class Visitor(FastHttpUser):
    wait_time = constant(0)

    @task
    def read(self) -> None:
        response = self.client.get("/db")
        response.json()["missing_key"]
