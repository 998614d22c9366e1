#!/usr/bin/env bash
# The nightly job's steps (.github/workflows/nightly-gpu.yml runs this after restoring the history), runnable on any
# machine: docs/how-to/history.md shows a dry run on a CPU with the smoke profile.
#   1. run the matrix (KBM_NIGHTLY_ARGS); a finished run adds itself to the history (KBM_HISTORY)
#   2. add it again: idempotent, and a history that could not be written at the end of step 1 was only a warning
#   3. check every result against the contract
#   4. write the history site into the run's folder, beside its report (one artifact holds both)
#   5. `history check` over every series, not just last night: exit 1 on a new conclusive regression
# Every step runs whatever the one before it gave; the exit status is the first failure's (1: a failed cell, a
# broken contract or a regression; 2: bad input), 0 when all passed.
#
# KBM_HISTORY is a SQLite file (default: $KBM_RESULTS/history.sqlite) or a postgresql:// URL; it is passed in the
# environment, never on a command line, so a URL's password stays out of run.json's argv and the logs.
# KBM_NIGHTLY_RUN replaces step 1's command line (the GPU job: `make gpu-check BUNDLE=gpu-bundle`, which writes into
# ./results); KBM is how steps 2-5 call the runner (default ./kbm, which builds .venv from the package index; a GPU
# machine without one: `python3 -m runner` with the bundle's folder on PYTHONPATH, `bundle_run --install-only`).
set -uo pipefail
cd "$(dirname "$0")/.."
results="${KBM_RESULTS:-results}"
export KBM_HISTORY="${KBM_HISTORY:-$results/history.sqlite}"
default_args="--executor docker --gpus 1 --profile article --env keras3-tensorflow --env keras3-jax --env keras3-torch"
read -r -a args <<< "${KBM_NIGHTLY_ARGS:-$default_args}"
status=0
step() {  # step NAME COMMAND...: run it, remember the first failure (a folded group in GitHub's log)
    if [ "${GITHUB_ACTIONS:-}" = true ]; then echo "::group::nightly: $1"; else echo "== nightly: $1"; fi
    shift
    "$@"
    local rc=$?
    if [ "${GITHUB_ACTIONS:-}" = true ]; then echo "::endgroup::"; fi
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
    return 0
}
read -r -a kbm <<< "${KBM:-./kbm}"
if [ -n "${KBM_NIGHTLY_RUN:-}" ]; then
    read -r -a run_matrix <<< "$KBM_NIGHTLY_RUN"
else
    run_matrix=(./kbm "${args[@]}" --results "$results")
fi
step "run the matrix" "${run_matrix[@]}"
run="$results/latest"
if [ ! -f "$run/run.json" ]; then
    echo "nightly: no run folder in $results (the matrix did not start); nothing to add or check" >&2
    exit $(( status ? status : 2 ))
fi
run="$(cd "$run" && pwd -P)"
step "add the run to the history" "${kbm[@]}" history add "$run"
step "check every result against the contract" "${kbm[@]}" check "$run"
step "write the history site" "${kbm[@]}" history report --out "$run/history-site"
step "judge every series" "${kbm[@]}" history check
echo "nightly: run $run; report $run/report/index.html; history site $run/history-site/index.html; exit $status"
exit "$status"
