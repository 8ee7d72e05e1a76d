"""Report: GET /report over the materialized view, no refresh running (baseline for report_refresh)."""

from locust import FastHttpUser, User, constant, task


class ReportUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def report(self) -> None:
        self.client.get("/report", name="/report")


class IdleUser(User):
    """Holds the slot report_refresh gives its refresher, so both scenarios have the same readers."""

    fixed_count = 1
    wait_time = constant(3600)

    @task
    def idle(self) -> None:
        pass
