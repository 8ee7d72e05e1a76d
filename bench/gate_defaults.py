"""The CI gate's defaults, declared once: `bench compare`, `bench ab` and their CLI options read them here
(this module imports nothing, so the CLI can name them without loading scipy).

DEFAULT_THRESHOLD: the smallest change that counts as a regression, as a share (asv's rule: the change must be
significant *and* beyond it). 5 %, not asv's 10 %: a CI job asks to catch a 10 % slowdown, and with the rule
applied to the estimate a change of exactly the threshold is flagged about half the time. Measured with
benchmarks/gate_quality.py on this project's 2-core machines (README, "Using dbbench in CI"): an injected
+10 % CPU per request was estimated at +8 % to +27 %, so 10 % missed 2 to 4 in 10 of them; at 5 % no A/A
comparison was flagged in any campaign.

DEFAULT_GATE_ON: the timed metric whose "slower" fails the gate — the target's CPU per request with the share
that moves with the machine's other load taken out (bench.compare.GATING_WHY).
"""

from __future__ import annotations

DEFAULT_THRESHOLD = 0.05
DEFAULT_GATE_ON: tuple[str, ...] = ("cpu_ms_per_request_net",)
