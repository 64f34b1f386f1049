"""`python -m dag_provenance.cli`, the same as the `dag-provenance` script."""

from dag_provenance.cli import main

main()
