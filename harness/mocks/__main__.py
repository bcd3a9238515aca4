import sys

from harness.mocks.server import main

sys.exit(main())
