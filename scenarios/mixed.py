"""Mixed 90/10: GET /worlds/{id} and PUT /worlds/{id}, both on the hot-key skew (writes invalidate cache)."""

from locust import FastHttpUser, constant, task

from scenarios.keys import hot_id, new_value


class MixedUser(FastHttpUser):
    wait_time = constant(0)

    @task(9)
    def read(self) -> None:
        self.client.get(f"/worlds/{hot_id()}", name="/worlds/{id}")

    @task(1)
    def write(self) -> None:
        self.client.put(f"/worlds/{hot_id()}", json={"randomNumber": new_value()}, name="PUT /worlds/{id}")
