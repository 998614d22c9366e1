import sys

from runner.executors.docker.cli import main

sys.exit(main())
