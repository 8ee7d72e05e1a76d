"""The contract check: a running server is checked against the contract before it is measured.

One job per module: ``variant`` runs the check; ``session`` holds one check in progress and what it may
assume and do (``Scope``); ``probe`` sends the
requests and turns each fault into one line; ``server_log`` finds the server's exception behind an HTTP 500;
``counting`` verifies queries per request through the target's /_bench/stats; ``core`` checks the
TechEmpower endpoints and /authors/*, ``data`` the data endpoints; ``expected`` computes right answers from
the seed, ``rules`` says what any right answer looks like; ``server`` waits for a ``--url`` server and asks
whether it is dbbench.
"""
