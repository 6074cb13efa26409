import sys

from .cli import main
from .scratch import withhold_from_others

withhold_from_others()  # the store and its snapshots are not for the machine's other users
sys.exit(main())
