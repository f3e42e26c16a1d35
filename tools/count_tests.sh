#!/usr/bin/env bash
# Sums the cmocka results in meson test logs (and pytest --junitxml files) and prints "N passed, N failed,
# N skipped"; a suite that crashed or timed out before cmocka could summarise counts as one failure.
set -u
awk '
  /^=+ [0-9]+\/[0-9]+ =+$/ { if (inblock) finish(); inblock = 1; bad = 0; bf = 0; next }
  /^result:/ { if ($0 ~ /exit status 77$/) s += 1; else if ($0 !~ /exit status 0$/) bad = 1 }
  /^\[  PASSED  \] [0-9]+ test/ { p += $4 }
  /^\[  FAILED  \] [0-9]+ test/ { f += $4; bf = 1 }
  /^\[  SKIPPED \] [0-9]+ test/ { s += $4 }
  /<testsuite / { n = attr("tests"); pf = attr("failures") + attr("errors"); sk = attr("skipped")
                  p += n - pf - sk; f += pf; s += sk; next }
  function attr(k) { return match($0, " " k "=\"[0-9]+\"") ? substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 4) + 0 : 0 }
  function finish() { if (bad && !bf) f += 1 }
  END { if (inblock) finish(); printf "%d passed, %d failed, %d skipped\n", p, f, s }
' "$@"
