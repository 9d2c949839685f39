"""`python -m prism` is the `prism` command."""

from prism.cli import main

main()
