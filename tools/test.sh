#!/usr/bin/env bash
# Runs every test (bazel test //...) and ends with one line
# "N passed, N failed" counting individual test cases (gtest cases from each
# target's test.xml). Exits non-zero when anything fails or fails to build.
set -uo pipefail
cd "$(dirname "$0")/.."

bazel test //... "$@"
rc=$?

logs="$(bazel info bazel-testlogs 2>/dev/null)"
passed=0
failed=0
if [ -d "$logs" ]; then
  while IFS= read -r xml; do
    cases=$(grep -o '<testcase ' "$xml" | wc -l)
    fails=$(grep -c '<failure' "$xml" || true)
    if [ "$cases" -eq 0 ]; then
      # A target that crashed before writing cases counts as one failure.
      if grep -q 'errors="[1-9]' "$xml" || grep -q 'failures="[1-9]' "$xml"; then
        fails=1
      else
        cases=1
      fi
    fi
    passed=$((passed + cases - fails))
    failed=$((failed + fails))
  done < <(bazel query 'tests(//...)' 2>/dev/null | sed -e 's|^//||' -e 's|:|/|' |
           while read -r t; do find -L "$logs/$t" -name test.xml 2>/dev/null; done)
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # a build failure or a target without a test.xml
fi
echo "${passed} passed, ${failed} failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
