"""python -m semql.sembench SCENARIO [options]"""

import sys

from .runner import main

sys.exit(main())
