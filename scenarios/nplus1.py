"""N+1 vs eager: GET /authors/lazy and /authors/eager?limit=20, the same 20 authors with their books."""

from locust import FastHttpUser, constant, task

LIMIT = 20


class AuthorsUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def lazy(self) -> None:
        # One query for the authors, then one per author: 21 round trips.
        self.client.get(f"/authors/lazy?limit={LIMIT}", name="/authors/lazy")

    @task
    def eager(self) -> None:
        # The same response from two queries (selectinload / = ANY).
        self.client.get(f"/authors/eager?limit={LIMIT}", name="/authors/eager")
