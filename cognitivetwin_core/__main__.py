import sys

from cognitivetwin_core.cli import main

sys.exit(main())
