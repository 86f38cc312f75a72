"""``python -m raquel_pg``: the ``raquel-pg`` command."""

import sys

from .cli import main

sys.exit(main())
