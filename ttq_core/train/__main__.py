"""``python -m ttq_core.train``: the same as ``ttq-train`` (works under torchrun)."""

import sys

from .cli import main

sys.exit(main())
