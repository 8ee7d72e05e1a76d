"""dbbench engine: provisioning, process supervision, run planning, load driving, results.

Nothing in this package imports locust or gevent at import time (see bench.locust_entry).
"""

__version__ = "0.1.0"
