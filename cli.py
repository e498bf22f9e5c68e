"""Command-line entry point from a clone: `python cli.py train ...` is `w2v train ...`."""

from w2v.cli import main

if __name__ == "__main__":
    main()
