"""`python -m rnnkit` runs the CLI."""

from rnnkit.cli import main

main()
