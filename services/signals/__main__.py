import sys

from services.signals.server import main

sys.exit(main())
