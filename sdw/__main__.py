"""`python -m sdw` is `sdw-run`."""

from sdw.app.cli import main

main()
