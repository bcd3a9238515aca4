import sys

from harness.chaos.api import main

sys.exit(main())
