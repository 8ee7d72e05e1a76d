"""Each user fetches its profile first and stops for good when that fails (``raise StopUser``)."""

from locust import FastHttpUser, constant, task
from locust.exception import StopUser


class Member(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        with self.client.get("/v1/profile", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"no profile: HTTP {response.status_code}")
                raise StopUser()

    @task
    def home(self) -> None:
        self.client.get("/db")
