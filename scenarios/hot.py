"""Hot keys: GET /worlds/{id}, 80 % of reads on 1 % of the ids (where a cache pays)."""

from locust import FastHttpUser, constant, task

from scenarios.keys import hot_id


class HotKeyUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def read(self) -> None:
        self.client.get(f"/worlds/{hot_id()}", name="/worlds/{id}")
