"""``bench compare`` / ``bench check`` as one HTML page: the failing cases first with their evidence, then every
case. A second template (``templates/gate.html.j2``) on the HTML report's shell (``base.html.j2``, same
jinja2 environment: autoescape on, so statements and names are text, never markup). No charts: the page
needs no Vega bundle."""

from __future__ import annotations

from reports.gate import FAIL, PASS, SKIP, Case, tally
from reports.html import _environment

TEMPLATE = "gate.html.j2"
MARKS = {FAIL: "slower / breached", PASS: "ok", SKIP: "inconclusive"}


def render(cases: list[Case], title: str, header: list[str]) -> str:
    page = _environment().get_template(TEMPLATE)
    return str(
        page.render(
            title=title,
            header=header,
            tally=tally(cases),
            noun="verdict" if title.endswith("compare") else "budget",
            failed=[case for case in cases if case.status == FAIL],
            cases=cases,
            marks=MARKS,
            vega_js="",
        )
    )
