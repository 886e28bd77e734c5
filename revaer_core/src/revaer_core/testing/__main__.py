"""``python -m revaer_core.testing`` runs the test harness's commands (see :mod:`revaer_core.testing.cli`)."""

import sys

from revaer_core.testing.cli import harness_main

sys.exit(harness_main())
