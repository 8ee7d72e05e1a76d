"""``python -m bench`` is the same as the ``bench`` command."""

from cli import main

main()
