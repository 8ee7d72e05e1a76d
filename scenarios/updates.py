"""Updates: GET /updates?queries=20, twenty reads and their writes per request (TechEmpower test 5)."""

from locust import FastHttpUser, constant, task

QUERIES = 20


class UpdatesUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def twenty_updates(self) -> None:
        self.client.get(f"/updates?queries={QUERIES}", name="/updates")
