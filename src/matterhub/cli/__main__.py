"""`python -m matterhub.cli`."""

from matterhub.cli.main import main

main()
