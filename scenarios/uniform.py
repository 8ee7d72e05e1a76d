"""Uniform keys: GET /worlds/{id}, every id equally likely (a 60 s cache sees few repeats)."""

from locust import FastHttpUser, constant, task

from scenarios.keys import uniform_id


class UniformKeyUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def read(self) -> None:
        self.client.get(f"/worlds/{uniform_id()}", name="/worlds/{id}")
