"""``python -m suggestion.service``: run the suggestion server in the foreground."""

from __future__ import annotations

import sys

from suggestion.service._server import main

sys.exit(main())
