#!/usr/bin/env bash
# Worked example for `abpn learn` (examples/learn/README.md): learn "warm the sky" from 3
# exemplar pairs, apply it to 10 other photos, and score it against the true edit next to
# doing nothing and the un-tuned shipped model. One command, from the repository root:
#
#     bash examples/learn/run.sh
#
# Environment (all optional):
#   BASE=abpn_cli/weights/abpn-default.pt   model to start from and to compare with (the shipped one)
#   MINUTES=5                      time budget of `abpn learn` (checks and saving included)
#   THREADS=2                      CPU threads for learning, eval and retouch
#   OUT=runs/learn-demo            where the model, reports, outputs and results.md go
#   DATA=data/learn                where the exemplar and test pairs are written
#   SIDE=                          e.g. 640: downscaled pairs for a quick dry run of the script
#   CROPS=                         e.g. examples/learn/crops: where the crop PNGs go
#   LEARN_ARGS=                    extra `abpn learn` flags, e.g. --no-holdout (learn from all 3)
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE="${BASE:-abpn_cli/weights/abpn-default.pt}"
MINUTES="${MINUTES:-5}"
THREADS="${THREADS:-2}"
OUT="${OUT:-runs/learn-demo}"
DATA="${DATA:-data/learn}"
export OMP_NUM_THREADS="$THREADS"  # eval and retouch use torch's default thread count

[ -f "$BASE" ] || { echo "base model not found: $BASE (set BASE=...)" >&2; exit 4; }
[ -d data/photos/train ] || bash examples/training/prepare_photos.sh

echo "== 1. exemplar pairs (3 to learn from) and test pairs (10 other photos)"
python examples/learn/make_exemplars.py --photos data/photos --out "$DATA" ${SIDE:+--max-side "$SIDE"}

echo "== 2. learn"
mkdir -p "$OUT"
rm -rf "$OUT/retouched"
{
    echo "cpus: $(getconf _NPROCESSORS_ONLN); threads: $THREADS"
    echo "load before learn: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "abpn train running alongside: $(pgrep -f 'abpn_cli train' >/dev/null && echo yes || echo no)"
} | tee "$OUT/machine.txt"
start=$(date +%s)
# shellcheck disable=SC2086  # LEARN_ARGS is a list of extra flags
python -m abpn_cli learn --pairs "$DATA/pairs3" --out "$OUT/learned.pt" \
    --from "$BASE" --minutes "$MINUTES" --threads "$THREADS" ${LEARN_ARGS:-}
echo "learn wall time: $(($(date +%s) - start)) s; load after: $(cut -d' ' -f1-3 /proc/loadavg)" \
    | tee -a "$OUT/machine.txt"

echo "== 3. apply it to the 10 other photos, as a photographer would"
python -m abpn_cli retouch "$DATA/test10/before" --out "$OUT/retouched" \
    --model "$OUT/learned.pt" --report "$OUT/retouch-report.json" --quiet

echo "== 4. score against the true edit: nothing / shipped model / learned model"
python -m abpn_cli eval --pairs "$DATA/test10" --baseline identity \
    --report "$OUT/eval-nothing.json" 2>/dev/null
python -m abpn_cli eval --pairs "$DATA/test10" --model "$BASE" \
    --report "$OUT/eval-shipped.json" 2>/dev/null
python -m abpn_cli eval --pairs "$DATA/test10" --model "$OUT/learned.pt" \
    --report "$OUT/eval-learned.json" 2>/dev/null

echo "== 5. tables and crops"
python examples/learn/summarize.py --out "$OUT" --pairs "$DATA/test10" --shipped "$BASE" \
    ${CROPS:+--crops "$CROPS"}
