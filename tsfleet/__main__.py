import sys

from tsfleet.cli import main

sys.exit(main())
