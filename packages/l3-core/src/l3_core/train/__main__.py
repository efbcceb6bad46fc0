"""``python -m l3_core.train --config run.toml`` (what ``torchrun -m`` launches)."""

import sys

from l3_core.train.cli import main

sys.exit(main())
