import sys

from kmerx.cli import main

sys.exit(main())
