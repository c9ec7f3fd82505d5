#!/bin/bash
# Runs the C unit tests (TAP, through prove) and the integration tests
# (pytest with Debian's python3), then prints one line "N passed, N failed"
# and exits non-zero when anything failed.

set -u
cd "$(dirname "$0")/.."

BUILD=build
mkdir -p "$BUILD"
unit_only=0 integration_only=0
case "${1:-}" in
    --unit-only) unit_only=1 ;;
    --integration-only) integration_only=1 ;;
esac

unit_pass=0 unit_fail=0
if [ $integration_only -eq 0 ]; then
    echo "== unit tests (ASan + UBSan)"
    tests=$(ls t/unit/*.c 2>/dev/null | sed 's#t/unit/\(.*\)\.c#build/unit/\1#')
    if make -k --no-print-directory unit-build > "$BUILD/unit-build.log" 2>&1
    then
        unit_rc=0
    else
        unit_rc=1
        tail -40 "$BUILD/unit-build.log"
    fi
    existing=$(for t in $tests; do [ -x "$t" ] && echo "$t"; done)
    if [ -n "$existing" ]; then
        prove --exec '' -v $existing > "$BUILD/prove.log" 2>&1 || unit_rc=1
        grep -E '^not ok|^#|Result:|^Files=' "$BUILD/prove.log" \
            | grep -vE '^# (skip|SKIP)' | tail -40
    else
        : > "$BUILD/prove.log"
    fi
    unit_pass=$(grep -cE '^ok ' "$BUILD/prove.log")
    unit_fail=$(grep -cE '^not ok ' "$BUILD/prove.log")
    # a binary that died (sanitizer, crash) or failed to build counts too
    if [ $unit_rc -ne 0 ] && [ "$unit_fail" -eq 0 ]; then
        unit_fail=1
    fi
fi

int_pass=0 int_fail=0
if [ $unit_only -eq 0 ]; then
    echo "== integration tests (real nginx, Kafka, Postgres, Redis, ClickHouse)"
    # make deps' virtualenv adds the real SDKs to Debian's python3
    py=/usr/bin/python3
    [ -x build/venv/bin/python ] && py=build/venv/bin/python
    # a private base directory: concurrent runs must not share (and reset
    # the permissions of) pytest's default /tmp/pytest-of-<user>
    basetemp=$(mktemp -d /tmp/edgehog-test.XXXXXX)
    $py -m pytest -p no:cacheprovider -q -rfE --basetemp="$basetemp/t" \
        --junitxml="$BUILD/junit.xml" t/integration ${PYTEST_ARGS:-}
    pytest_rc=$?
    rm -rf "$basetemp"
    read -r int_pass int_fail < <(/usr/bin/python3 - "$BUILD/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)
    if [ $pytest_rc -ne 0 ] && [ "$int_fail" -eq 0 ]; then
        int_fail=1
    fi
fi

passed=$((unit_pass + int_pass))
failed=$((unit_fail + int_fail))
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
