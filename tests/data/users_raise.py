"""Each user needs a credential its ``on_start`` cannot find, and dies with the exception."""

from locust import FastHttpUser, constant, task


class Member(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        raise RuntimeError("no credentials in the environment")

    @task
    def home(self) -> None:
        self.client.get("/db")
