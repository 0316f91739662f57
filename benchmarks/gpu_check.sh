#!/usr/bin/env bash
# GPU checks in one go: the CUDA tests, the speed benchmark, the README's main job (carphone,
# preset medium) on the GPU, and rate-distortion at the slow preset on the GPU. Run from the repository root on a machine with a CUDA GPU:
#
#     bash benchmarks/gpu_check.sh [OUTDIR] [SECONDS]
#
# Needs torch and triton. PyAV and constriction wheels found in .whl/ are installed into
# /tmp/site first (a GPU image without them). Every step has a time limit within SECONDS
# (default 540); what finished is packed into OUTDIR/gpu_check.tgz after each step, with the
# log in OUTDIR/gpu_check.log.
set -u
out=${1:-${OUT:-/tmp/gpu_check}}
budget=${2:-540}
work=/tmp/gpu_check_work
mkdir -p "$out" "$work"
log="$out/gpu_check.log"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 TRITON_INTERPRET=0

step() {  # step SECONDS COMMAND...: run with a limit, log it, pack the results so far
    local limit=$1; shift
    local left=$((budget - SECONDS - 10))
    ((limit > left)) && limit=$left
    if ((limit < 20)); then echo "== skipped (no time left): $*" >>"$log"; return; fi
    echo "== $* (limit ${limit}s, at ${SECONDS}s)" >>"$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "== exit $? at ${SECONDS}s" >>"$log"
    tar czf "$out/gpu_check.tgz" -C "$work" .
}

step 30 bash -c 'nvidia-smi -L; python3 -c "import torch, triton, av, constriction, sys
print(sys.version.split()[0], torch.__version__, triton.__version__, av.__version__, torch.cuda.get_device_name())"'
step 150 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py
step 100 python3 -m benchmarks.speed --device cuda --model grid --tag gpu --out "$work"
step 100 python3 -m benchmarks.speed --device cuda --model siren --tag gpu_siren --out "$work"
step 120 bash -c "python3 -m codec encode samples/carphone.mp4 -o $work/carphone.nirv --device cuda \
    && python3 -m codec decode $work/carphone.nirv -o $work/carphone.mp4 --device cuda \
    && python3 -m codec eval $work/carphone.mp4 --ref samples/carphone.mp4 --nirv $work/carphone.nirv"
for clip in carphone:120 bikes:60; do
    step 220 python3 -m benchmarks.rd "samples/${clip%%:*}.mp4" --frames "${clip##*:}" \
        --qualities 2 4 6 8 --preset slow --device cuda --workers 2 \
        --reuse-anchors benchmarks/results/rd_anchors.json --tag "gpu_slow_${clip%%:*}" --out "$work"
done
