import sys

from services.portfolio.server import main

sys.exit(main())
