"""``python -m autograder`` is ``idivkit-grade``."""

from .cli import main

raise SystemExit(main())
