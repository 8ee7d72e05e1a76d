"""One task, two requests, no think time: under --rate each request needs its own slot."""

from locust import FastHttpUser, constant, task


class Pair(FastHttpUser):
    wait_time = constant(0)

    @task
    def pair(self) -> None:
        self.client.get("/db", name="/db first")
        self.client.get("/db", name="/db second")
