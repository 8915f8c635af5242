#!/usr/bin/env bash
# The quick start: the commands of the README's "Quick start" block, line for line
# (tests/test_readme.py checks that the block and QUICK_START below agree), one step each.
#
#   scripts/quickstart.sh                  the three steps in turn
#   scripts/quickstart.sh STEP [STEP ...]  the steps named: train, test, predict
#   scripts/quickstart.sh --list           one line per step, NAME<tab>COMMAND (CI, .ci/run, times
#                                          each part of a command joined by ' && ' on its own)
#
# Each step installs the package into the Python environment in use (on a fresh machine, a new
# virtual environment: python3 -m venv venv && . venv/bin/activate), then, from the repository root:
#   train    cross-validates resattn and U-Net on built-in synthetic CT (about 8 minutes on 2 CPU cores)
#   test     runs the test suite (installed with the test tools)
#   predict  segments the bundled sample with the released model, no training, and prints the infection
#            report; the sample, saved_models/resattn_medseg100/samples/sample_ct.nii.gz, is three
#            synthetic slices of 160x144 in Hounsfield units, not a real scan
set -euo pipefail

STEPS=(train test predict)

# The README's quick-start block: a comment, then the step's command, for each step in the order of STEPS.
QUICK_START=$(cat <<'EOF'
# install, then cross-validate resattn and U-Net on built-in synthetic CT (about 8 minutes on 2 CPU cores)
pip install -e ".[all]" && python scripts/cv_train.py

# install with the test tools, then run the test suite in two workers (about 4 minutes on 2 CPU cores)
pip install -e ".[all,test]" && python -m pytest -n 2

# install, then segment the bundled sample (three synthetic slices of 160x144 in HU, not a real scan) with the released model, no training: prints the infection report
pip install -e ".[all]" && python scripts/predict.py --model resattn_medseg100 --input saved_models/resattn_medseg100/samples/sample_ct.nii.gz --out sample_prediction --overwrite
EOF
)

# The block's commands: its lines that are neither blank nor a comment.
mapfile -t COMMANDS < <(grep -v -e '^#' -e '^[[:space:]]*$' <<<"$QUICK_START")
if [ "${#COMMANDS[@]}" -ne "${#STEPS[@]}" ]; then
    echo "error: the quick-start block has ${#COMMANDS[@]} commands for ${#STEPS[@]} steps (${STEPS[*]})" >&2
    exit 1
fi

# command_of STEP: prints the step's command, or an error naming the steps (status 2).
command_of() {
    local i
    for i in "${!STEPS[@]}"; do
        if [ "${STEPS[$i]}" = "$1" ]; then
            printf '%s\n' "${COMMANDS[$i]}"
            return 0
        fi
    done
    echo "error: unknown step '$1' (steps: ${STEPS[*]})" >&2
    return 2
}

case "${1:-}" in
    --list)
        for i in "${!STEPS[@]}"; do printf '%s\t%s\n' "${STEPS[$i]}" "${COMMANDS[$i]}"; done
        exit 0
        ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
        exit 0
        ;;
esac

if [ "$#" -eq 0 ]; then
    set -- "${STEPS[@]}"
fi
for step in "$@"; do
    command_of "$step" >/dev/null
done

cd "$(dirname "$0")/.."
for step in "$@"; do
    command=$(command_of "$step")
    echo "== quick start, $step: $command"
    bash -c "set -euo pipefail; $command"
done
