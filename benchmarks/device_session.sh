#!/usr/bin/env bash
# One GPU session in one command, within 10 minutes (the device tool's limit per call):
#   1. install the kit (mamba-ssm for sm_90, fvcore, papermill, …) carried as .devkit/ (../shared/device/README.md);
#   2. bench_train for the full-size MambaHash at 224 px: batch 32 and 128, eager vs fast (fused), with mamba-ssm's
#      kernel and with the pure-PyTorch chunked scan ($MH_SCAN_BACKEND); then eager vs compiled at batch 128 with
#      the kernel, the measurement that decides whether the gpu profile should compile;
#   3. Table 1 under the gpu profile, one bit length after another (48 first), while the budget lasts;
#   4. everything with manifests into results/device/<UTC time>/ (and $OUT/, which the device tool returns).
#
#   benchmarks/device_session.sh [--budget-s SECONDS] [--dry-run]
#
# Before the device call, on this machine:   benchmarks/device_session.sh --prepare
#   (copies ../shared/device to .devkit/ with CIFAR-10's archive, and excludes it from git), then
#   run(command="benchmarks/device_session.sh --budget-s 480", carry=[".devkit"], timeout_s=570).
# --dry-run rehearses every step on this CPU: no kit, the reduced network at 32 px for the benchmarks, the
# rehearse profile (the gpu profile on 32 images, mh.profiles) for training, output under results/cache/.
# Each step runs only when the budget has room for it (its estimate below); a training cut by the budget keeps
# its checkpoint and says so in session.json.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=480
dry_run=0
prepare=0
while [ $# -gt 0 ]; do
    case "$1" in
        --budget-s) budget="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        --prepare) prepare=1; shift ;;
        *) echo "device_session.sh: unknown argument $1 (expected --budget-s N, --dry-run or --prepare)" >&2; exit 2 ;;
    esac
done

if [ "$prepare" = 1 ]; then
    rm -rf .devkit
    cp -r ../shared/device .devkit
    cp ../shared/data/cifar10-jpg.tar.gz .devkit/
    grep -qx '/.devkit/' .git/info/exclude || echo '/.devkit/' >> .git/info/exclude
    echo "[device] .devkit ready ($(du -sh .devkit | cut -f1)); carry it: carry=[\".devkit\"]"
    exit 0
fi

started=$(date +%s)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
python=python3
if [ -x .venv/bin/python ]; then python=.venv/bin/python; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the GPU machine runs the checkout without installing it

if [ "$dry_run" = 1 ]; then
    out="results/cache/device-dry-run/$stamp"
    device=cpu; size=reduced; image_size=32; scans="chunked"; profile=rehearse; steps=3; warmup=1
    export MH_COMPILE_BACKEND=eager  # as make rehearse: trace, skip code generation
    bench_estimate=60; train_estimate=120
else
    out="results/device/$stamp"
    device=cuda; size=paper; image_size=224; scans="cuda chunked"; profile=gpu; steps=10; warmup=3
    bench_estimate=75; train_estimate=150
fi
mkdir -p "$out"
log() { echo "[device $(( $(date +%s) - started ))s] $*" | tee -a "$out/session.log"; }
left() { echo $(( budget - ($(date +%s) - started) )); }
done_file="$out/.done"; skipped_file="$out/.skipped"; : > "$done_file"; : > "$skipped_file"

if [ "$dry_run" = 0 ]; then
    bash .devkit/install.sh .devkit 2>&1 | tail -2 | tee -a "$out/session.log"
    data_root=$(mktemp -d)
    tar xzf .devkit/cifar10-jpg.tar.gz -C "$data_root"
    export MH_DATA_DIR="$data_root/cifar10"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/nvidia-smi.csv" || true
fi
: "${MH_DATA_DIR:?set MH_DATA_DIR to CIFAR-10 (the dry run reads it as make reproduce does)}"
log "budget ${budget}s, device $device, output $out"

for batch in 32 128; do
    for scan in $scans; do
        name="bench-mambahash-${size}-${image_size}px-b${batch}-${scan}"
        if [ "$(left)" -lt "$bench_estimate" ]; then echo "$name: no budget left" >> "$skipped_file"; log "skip $name: budget"; continue; fi
        log "$name"
        if MH_SCAN_BACKEND=$scan $python benchmarks/bench_train.py --model mambahash --size "$size" \
            --image-size "$image_size" --batch-size "$batch" --device "$device" --fast-path fused \
            --steps "$steps" --warmup "$warmup" --encode-batches 2 --json "$out/$name.json" 2>&1 \
            | grep -v '^W[0-9]' | tee -a "$out/session.log"; then
            echo "$name" >> "$done_file"
        else
            echo "$name: failed" >> "$skipped_file"
        fi
    done
done

name="bench-mambahash-${size}-${image_size}px-b128-${scans%% *}-compiled"
if [ "$(left)" -lt $(( 2 * bench_estimate + train_estimate )) ]; then
    echo "$name: no budget left" >> "$skipped_file"; log "skip $name: budget"
else
    log "$name"
    if MH_SCAN_BACKEND=${scans%% *} $python benchmarks/bench_train.py --model mambahash --size "$size" \
        --image-size "$image_size" --batch-size 128 --device "$device" --fast-path compiled \
        --steps "$steps" --warmup "$warmup" --encode-batches 2 --json "$out/$name.json" 2>&1 \
        | grep -v '^W[0-9]' | tee -a "$out/session.log"; then
        echo "$name" >> "$done_file"
    else
        echo "$name: failed" >> "$skipped_file"
    fi
fi

for bits in 48 16 32 64; do
    name="train-$profile-${bits}bits"
    remaining=$(left)
    if [ "$remaining" -lt "$train_estimate" ]; then echo "$name: no budget left" >> "$skipped_file"; log "skip $name: budget"; continue; fi
    log "$name (at most ${remaining}s)"
    if timeout --signal=INT "$remaining" $python -m mh.train --profile "$profile" --bits "$bits" \
        --runs-dir "$out/runs" --verify-data header --no-progress 2>&1 | grep -v '^W[0-9]' | tee -a "$out/session.log"; then
        echo "$name" >> "$done_file"
    else
        echo "$name: stopped by the budget or failed (see session.log)" >> "$skipped_file"
    fi
done

rm -f "$out"/runs/*/checkpoint.ckpt  # checkpoints are never committed
$python - "$out" "$budget" "$dry_run" "$(( $(date +%s) - started ))" <<'EOF'
import json, sys
from pathlib import Path
from mh.manifest import run_manifest
out, budget, dry_run, seconds = sys.argv[1:]
lines = lambda name: [line for line in (Path(out) / name).read_text().splitlines() if line]
record = run_manifest("device-session", None, budget_s=int(budget), dry_run=dry_run == "1", wall_seconds=int(seconds),
                      done=lines(".done"), skipped=lines(".skipped"))
(Path(out) / "session.json").write_text(json.dumps(record, indent=2) + "\n")
EOF
rm -f "$done_file" "$skipped_file"
log "done; $out/session.json"
if [ -n "${OUT:-}" ]; then cp -r "$out" "$OUT/"; fi
