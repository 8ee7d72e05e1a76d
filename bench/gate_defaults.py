"""The CI gate's defaults, declared once: `bench compare`, `bench ab` and their CLI options read them here
(this module imports nothing, so the CLI can name them without loading scipy).

DEFAULT_THRESHOLD: the smallest change that counts as a regression, as a share (asv's rule: the change must be
significant *and* beyond it). 5 %, not asv's 10 %: a CI job asks to catch a 10 % slowdown, and with the rule
applied to the estimate a change of exactly the threshold is flagged about half the time. Measured with
benchmarks/gate_quality.py on this project's 2-core machines (README, "Using dbbench in CI"): an injected
+10 % CPU per request was estimated at +8 % to +27 %, so 10 % missed 2 to 4 in 10 of them; at 5 % no A/A
comparison was flagged in any campaign.

DEFAULT_GATE_ON: the timed metrics whose "slower" fails the gate — the target's CPU per request, plain and net of
the share that moves with the machine's other load (bench.compare's module docstring says why CPU and not
req/s or latency). Either one suffices: the net figure is the tighter when its fit holds, the plain one catches
what a failed fit blurs. Chosen on the 2026-12-01 AMD EPYC campaign (README, "Using dbbench in CI": 18 A/A and
18 +10 % slowdowns, load 1-10, re-judged at 5 %): net alone 0/18 false alarms and 15/18 caught, plain alone
0/18 and 15/18, either 0/18 and 17/18.
"""

from __future__ import annotations

DEFAULT_THRESHOLD = 0.05
DEFAULT_GATE_ON: tuple[str, ...] = ("cpu_ms_per_request", "cpu_ms_per_request_net")
