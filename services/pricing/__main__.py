import sys

from services.pricing.server import main

sys.exit(main())
