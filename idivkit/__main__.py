"""``python -m idivkit`` is the ``idivkit`` command."""

from .cli import main

raise SystemExit(main())
