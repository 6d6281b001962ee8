"""``python -m eval`` is ``qa eval``."""

import sys

from qa.cli import main

sys.exit(main(["eval", *sys.argv[1:]]))
