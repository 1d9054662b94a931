"""`python -m inference_pod` = `voiceflow serve` with settings from the environment."""

import sys

from inference_pod.serve import serve
from inference_pod.settings import Settings

if __name__ == "__main__":
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a bad VOICEFLOW_* value: one clear line, not a traceback
        print(f"inference pod: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(settings))
