"""`python -m w2v ...` (and `torchrun -m w2v ...`) run the command line."""

from w2v.cli import main

main()
