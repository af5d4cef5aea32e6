#!/usr/bin/env bash
# HTCondor job wrapper: runs one hepscale command in the job's scratch folder.
#
#   executable = hepscale_job.sh
#   arguments  = "train train.yaml model.size=Pico --output runs/ID --resume"
#
# It runs `python3 -m hepscale.condor ARGS` (forwarding SIGTERM, SIGUSR1, SIGINT), i.e. `hepscale ARGS` (study prepare reads the
# transferred copies of the study's external inputs), and exits with the command's status (85:
# checkpointed, HTCondor's checkpoint_exit_code; 2: configuration or data error, not retried).
#
# The software, from the environment the submit description sets (site profile `software`):
#   HEPSCALE_SETUP    a shell line sourced first (e.g. an LCG view on /cvmfs)
#   HEPSCALE_TARBALL  a packed environment (conda-pack/venv-pack .tar.gz) transferred with the
#                     job: unpacked into the scratch folder and activated
#   HEPSCALE_WHEEL    the hepscale wheel transferred with the job: installed into the scratch
#                     folder with pip --no-deps --no-index (the dependencies come from the image
#                     or HEPSCALE_SETUP)
#   HEPSCALE_PYTHON   the interpreter (default python3; the image's, the setup's or the
#                     unpacked environment's)
#   HEPSCALE_VENV     a virtual environment to activate (a path on the worker)
# Threads: OMP_NUM_THREADS as HTCondor sets it (the CPUs of the slot), else HEPSCALE_CPUS (the
# job's request_cpus), for OpenMP, MKL, OpenBLAS, numexpr and torch. NUMBA_CACHE_DIR and the
# caches go to the scratch folder (_CONDOR_SCRATCH_DIR, else the working directory).
set -euo pipefail

scratch="${_CONDOR_SCRATCH_DIR:-$PWD}"
threads="${OMP_NUM_THREADS:-${HEPSCALE_CPUS:-1}}"
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" \
    NUMEXPR_NUM_THREADS="$threads"
export NUMBA_CACHE_DIR="$scratch/.numba-cache" MPLCONFIGDIR="$scratch/.matplotlib" \
    XDG_CACHE_HOME="$scratch/.cache" PYTHONNOUSERSITE=1
python="${HEPSCALE_PYTHON:-python3}"

log() { echo "hepscale_job: $*" >&2; }

if [ -n "${HEPSCALE_SETUP:-}" ]; then
    log "setup: $HEPSCALE_SETUP"
    set +u
    eval "$HEPSCALE_SETUP"
    set -u
fi
if [ -n "${HEPSCALE_VENV:-}" ]; then
    # shellcheck disable=SC1091
    . "${HEPSCALE_VENV}/bin/activate"
fi
if [ -n "${HEPSCALE_TARBALL:-}" ]; then
    mkdir -p "$scratch/.hepscale-env"
    tar -xzf "$HEPSCALE_TARBALL" -C "$scratch/.hepscale-env"
    set +u
    # shellcheck disable=SC1091
    . "$scratch/.hepscale-env/bin/activate"
    set -u
    if [ -x "$scratch/.hepscale-env/bin/conda-unpack" ]; then "$scratch/.hepscale-env/bin/conda-unpack"; fi
    python="${HEPSCALE_PYTHON:-python3}"
    if [ "$python" = python3 ]; then python="$scratch/.hepscale-env/bin/python3"; fi
fi
if [ -n "${HEPSCALE_WHEEL:-}" ]; then
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps --no-index \
        --target "$scratch/.hepscale-pkgs" "$HEPSCALE_WHEEL" >&2
    export PYTHONPATH="$scratch/.hepscale-pkgs${PYTHONPATH:+:$PYTHONPATH}"
fi

log "host $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ), node attempt ${HEPSCALE_ATTEMPT:-0}," \
    "job ${HEPSCALE_JOB_KIND:-?}, $threads thread(s), python $(command -v "$python" || echo "$python")"
log "command: hepscale $*"
# the command runs as a child so that HTCondor's SIGTERM (eviction, condor_vacate) and SIGUSR1
# reach it: the trainer then writes a checkpoint and exits with 85
"$python" -m hepscale.condor "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' TERM
trap 'kill -USR1 "$child" 2>/dev/null || true' USR1
trap 'kill -INT "$child" 2>/dev/null || true' INT
status=0
while :; do
    wait "$child" && status=0 || status=$?
    kill -0 "$child" 2>/dev/null || break  # a forwarded signal interrupted wait: the command still runs
done
log "exit status $status at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
exit "$status"
