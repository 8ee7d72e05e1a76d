"""A user's own service under dbbench (``bench run --app``, ``bench ab``): what it is (``spec``), the data it
gets (``databases``: one set-up database per app, kept as a template and cloned before every cell), how it is
started (``serve``), checked (``check``) and measured (``run``)."""
