#!/usr/bin/env bash
# HTCondor job wrapper: runs one hepscale command in the job's scratch directory.
#
#   executable = hepscale_job.sh
#   arguments  = "train run.yaml --output run --resume"
#
# The command's exit status is the job's (e.g. the trainer's checkpoint exit code, which the
# submit description declares as checkpoint_exit_code). Set HEPSCALE_VENV to a virtual
# environment to activate, or ship hepscale in the job's container image.
set -euo pipefail
if [ -n "${HEPSCALE_VENV:-}" ]; then
    # shellcheck disable=SC1091
    . "${HEPSCALE_VENV}/bin/activate"
fi
echo "hepscale job on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ): hepscale $*" >&2
exec python -m hepscale "$@"
