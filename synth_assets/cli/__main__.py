"""`python -m synth_assets.cli`: the same commands as the `synth-assets` script."""

import sys

from .main import main

sys.exit(main())
