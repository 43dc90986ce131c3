"""``python -m app`` serves the web app (same options as ``nautilus-workbench serve``)."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
