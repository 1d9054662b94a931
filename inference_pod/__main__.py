"""`python -m inference_pod` = `voiceflow serve` with settings from the environment."""

import sys

from inference_pod.serve import serve
from inference_pod.settings import Settings

if __name__ == "__main__":
    sys.exit(serve(Settings.from_env()))
