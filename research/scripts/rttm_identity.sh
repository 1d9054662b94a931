#!/usr/bin/env bash
# Do two checkouts give byte-identical RTTMs? `voiceflow batch` over a folder, and
# `voiceflow diarize --streaming` over its files named on the command line.
#
#   research/scripts/rttm_identity.sh OLD_CHECKOUT NEW_CHECKOUT AUDIO_DIR [STREAMED_FILE...]
#
# Both run with this repository's .venv, each checkout first on PYTHONPATH (its own code and models).
# Prints one line per differing RTTM and a count per mode; exits 1 when any differ.
# Used on 2026-12-06 (docs/deploy.md, offline throughput): old = a9b5c69 (git worktree add), new = main.
set -euo pipefail
old=$1 new=$2 audio=$3
shift 3
python=$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python
out=$(mktemp -d)
for side in old new; do
  root=${!side}
  mkdir -p "$out/$side/batch" "$out/$side/stream"
  PYTHONPATH=$root "$python" -m voiceflow_cli.main batch "$audio" --out-dir "$out/$side/batch" --workers 2 >/dev/null
  for file in "$@"; do
    PYTHONPATH=$root "$python" -m voiceflow_cli.main diarize "$file" --streaming --out-dir "$out/$side/stream" --quiet >/dev/null
  done
done
status=0
for mode in batch stream; do
  same=0 differ=0
  for rttm in "$out/new/$mode"/*.rttm; do
    [ -e "$rttm" ] || continue
    if cmp -s "$rttm" "$out/old/$mode/$(basename "$rttm")"; then same=$((same + 1)); else differ=$((differ + 1)); echo "differs: $mode/$(basename "$rttm")"; status=1; fi
  done
  echo "$mode: $same identical, $differ differ"
done
echo "RTTMs in $out"
exit $status
