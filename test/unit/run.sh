#!/usr/bin/env bash
# Unit tier: no root, no kernel WireGuard. (Node 20's --test takes no globs; bash expands.)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
shopt -s globstar nullglob
# A test that leaves a handle open after a failed assertion (a gateway not stopped) would hold
# its file, and CI, until the job's limit: every test (and file) gets 300 s, then fails by name.
exec node --import tsx --test --test-timeout=300000 --test-reporter=spec test/unit/**/*.test.ts
