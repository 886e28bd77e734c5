"""``python -m revaer_core`` runs the ``revaer`` command."""

import sys

from revaer_core.cli import main

sys.exit(main())
