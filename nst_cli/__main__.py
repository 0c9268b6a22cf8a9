import sys

from nst_cli.main import main

sys.exit(main())
