"""The harness every variant shares, kept apart from the variants themselves (as SQLAlchemy's
``examples/performance`` keeps its strategies apart from the code that runs and times them).

``targets/<variant>.py`` holds one way of reaching the database; everything here is the same for all of
them: the contract's routes and rules (``contract``, ``data_rules``, ``schema``), what a target is told
(``settings``), connection arguments per driver (``connargs``), SQLite's side (``sqlite``, ``models``),
statement timing (``instrument``, ``stats``, ``fingerprint``), profiling, the world cache and the refresh
bookkeeping. Imports point one way: variants import ``targets.common``, never the reverse.
"""
