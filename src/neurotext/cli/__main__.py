"""``python -m neurotext.cli``: the `neurotext` command."""

import sys

from neurotext.cli import main

sys.exit(main())
