from __future__ import annotations

import sys
from pathlib import Path

# tests/ is not a package of the distribution; make `tests.helpers` importable from any cwd.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
