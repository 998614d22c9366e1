#!/usr/bin/env bash
# One lent GPU machine, few minutes, no network: the project's GPU measurements as one prepared script.
#
#   tooling/gpu_session.sh BUNDLE STEP...      from the repository root, on the GPU machine
#
# BUNDLE is a folder made by `make gpu-bundle` (the wheels the machine's python3 lacks); each STEP's output goes to
# $OUT (default ./gpu-session) and is packed into $OUT/results.tgz after every step, so a run stopped by its time
# limit still returns what finished. Steps:
#   facts      nvidia-smi, and what JAX and PyTorch say about the device and their float32 precision
#   ablation   tooling.fit_ablation on JAX and PyTorch: each piece of the harness against a bare fit, one process
#   bench      make bench-overhead on JAX and PyTorch (bench-gpu profile; BENCH_ROUNDS rounds, 5 % goal)
#   bench-ablation   the same on JAX with --ablation (bare + timer, bare + batch hook, each its own process)
#   check      make gpu-check BUNDLE=... (CHECK_ARGS, e.g. "--model mlp --model cnn")
#   hostfeed   the twins fed from the host (variant native-host-feed), for the Keras tax's parts
# Each step has its own time limit (STEP_LIMIT_<STEP>, seconds); a step that fails or times out is logged and
# the next one runs.
set -u
BUNDLE=${1:?usage: tooling/gpu_session.sh BUNDLE STEP...}
shift
OUT=${OUT:-$PWD/gpu-session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 KBM_CACHE=${KBM_CACHE:-$PWD/.kbm-gpu-cache}
PY=${GPU_PYTHON:-python3}
log() { echo "=== $(date -u +%T) $*" | tee -a "$OUT/session.log"; }
pack() { tar czf "$OUT/results.tgz" -C "$PWD" results 2>/dev/null || true; }
run_step() {  # name, limit, command...
  local name=$1 limit=$2; shift 2
  log "$name: start (limit ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  log "$name: exit $? after $((SECONDS - t0)) s"
  tail -n 25 "$OUT/$name.log"
  pack
}

log "installing from $BUNDLE"
SITE=$($PY -m runner.bundle_run "$BUNDLE" --install-only 2> "$OUT/install.log" | tail -n 1)
cat "$OUT/install.log" | tail -n 5
export PYTHONPATH=$SITE
log "PYTHONPATH=$PYTHONPATH"

for step in "$@"; do
  case $step in
    facts)
      run_step facts "${STEP_LIMIT_FACTS:-60}" bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm --format=csv; \
        $PY -c 'import jax; d=jax.devices()[0]; print(\"jax\", jax.__version__, d, d.device_kind, getattr(d, \"compute_capability\", None), jax.config.jax_default_matmul_precision)'; \
        $PY -c 'import torch; print(\"torch\", torch.__version__, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0), torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)'; \
        $PY -m pip list 2>/dev/null | grep -iE '^(jax|jaxlib|torch|numpy|pandas|keras|optax|ml.dtypes) '" ;;
    ablation)
      run_step ablation-jax "${STEP_LIMIT_ABLATION:-150}" $PY -m tooling.fit_ablation --backend jax --repeats 2 \
        --json "$OUT/ablation-jax.json"
      run_step ablation-torch "${STEP_LIMIT_ABLATION:-150}" $PY -m tooling.fit_ablation --backend torch --repeats 1 \
        --variants "bare,timer,timer without wait,batch hook,tf32" --json "$OUT/ablation-torch.json" ;;
    bench)
      for backend in jax torch; do
        run_step "bench-$backend" "${STEP_LIMIT_BENCH:-240}" $PY -m tooling.bench --python $PY --backend $backend \
          --profile bench-gpu --rounds "${BENCH_ROUNDS:-3}" --max-rounds "${BENCH_ROUNDS:-3}" --goal 0.05
      done ;;
    bench-ablation)
      run_step bench-ablation-jax "${STEP_LIMIT_BENCH:-240}" $PY -m tooling.bench --python $PY --backend jax \
        --profile bench-gpu --ablation --rounds 2 --max-rounds 2 --goal 0.05 ;;
    check)
      # shellcheck disable=SC2086
      run_step check "${STEP_LIMIT_CHECK:-420}" $PY -m runner.gpu_check --python $PY ${CHECK_ARGS:-} ;;
    hostfeed)
      run_step hostfeed "${STEP_LIMIT_HOSTFEED:-200}" $PY -m runner --python $PY --profile gpu --only jax@native \
        --only torch@native --model mlp --model cnn --variant native-host-feed --no-report --no-history ;;
    *) log "unknown step $step (facts, ablation, bench, bench-ablation, check, hostfeed)" ;;
  esac
done
log "done"
pack
