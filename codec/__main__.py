"""``python -m codec`` runs the ``nirvana`` command."""

from codec.cli import main

main(prog_name="nirvana")
