"""Report under refresh: GET /report while one user POSTs /refresh-views every second (background task)."""

from locust import FastHttpUser, constant, constant_pacing, task


class ReportUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def report(self) -> None:
        self.client.get("/report", name="/report")


class RefreshUser(FastHttpUser):
    """One of the users: asks for a refresh each second; the 202 comes back at once, the refresh runs after."""

    fixed_count = 1
    wait_time = constant_pacing(1)

    @task
    def refresh(self) -> None:
        self.client.post("/refresh-views", name="POST /refresh-views")
