#!/usr/bin/env bash
#
# Runs the integration tests: every tests/integration/test_*.sh, or only
# the ones named on the command line (`run.sh test_vectors test_kill9`),
# each in its own bash process under a timeout. Prints PASS/FAIL per test
# (and a failed test's output), then "N passed, N failed"; exits non-zero
# when any test failed.
#
# Environment: SPOTAGENT (agent binary), TOOLS (directory of spotpub and
# spotsub), TEST_TIMEOUT (seconds per test, default 180).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
timeout_s=${TEST_TIMEOUT:-180}

tests=()
if [ $# -eq 0 ]; then
    for t in "$here"/test_*.sh; do
        [ -e "$t" ] && tests+=("$t")
    done
else
    for name in "$@"; do
        name=$(basename "$name")
        name=${name%.sh}
        if [ ! -f "$here/$name.sh" ]; then
            echo "run.sh: no such test: $name" >&2
            exit 2
        fi
        tests+=("$here/$name.sh")
    done
fi

if [ ${#tests[@]} -eq 0 ]; then
    echo "run.sh: no tests found in $here" >&2
    exit 2
fi

export SPOTAGENT=${SPOTAGENT:-$(cd "$here/../.." && pwd)/build/asan/spotagent}
export TOOLS=${TOOLS:-$(cd "$here/../.." && pwd)/build/tools}
for need in "$SPOTAGENT" "$TOOLS/spotpub"; do
    if [ ! -x "$need" ]; then
        echo "run.sh: missing $need (build it first: make all build/asan/spotagent)" >&2
        exit 2
    fi
done

logdir=$(mktemp -d "${TMPDIR:-/tmp}/spotinteg-logs.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
# Ctrl-C or SIGTERM: `timeout` runs each test in its own process group, out
# of reach of the terminal's signal, so pass it on (timeout relays it to the
# test, whose trap stops everything it started), then stop here.
child=
interrupted() {
    echo "run.sh: interrupted" >&2
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    exit 130
}
trap interrupted INT TERM

passed=0
failed=0
failed_names=()
suite_start=$SECONDS
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    start=$SECONDS
    rc=0
    timeout -k 15 "$timeout_s" bash "$t" >"$logdir/$name.log" 2>&1 &
    child=$!
    wait "$child" || rc=$?
    child=
    dur=$((SECONDS - start))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'PASS %s (%ds)\n' "$name" "$dur"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        why="exit $rc"
        [ "$rc" -eq 124 ] && why="timed out after ${timeout_s}s"
        printf 'FAIL %s (%ds, %s)\n' "$name" "$dur" "$why"
        echo "----- output of $name (last 200 lines) -----"
        tail -n 200 "$logdir/$name.log"
        echo "----- end of $name -----"
    fi
done

echo "integration suite: $((SECONDS - suite_start))s${failed_names[0]:+; failed: ${failed_names[*]}}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
