#!/usr/bin/env bash
# Unit tier: no root, no kernel WireGuard. (Node 20's --test takes no globs; bash expands.)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
shopt -s globstar nullglob
exec node --import tsx --test --test-reporter=spec test/unit/**/*.test.ts
