#!/usr/bin/env bash
# CI check: the committed webapp/dist/ is what web/build.sh makes of the
# sources in web/. Rebuilds into a temporary directory and compares; exits
# 1 on any difference (then run web/build.sh and commit webapp/dist/).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
committed=$here/../webapp/dist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$here/build.sh" "$tmp/dist" >/dev/null
if ! diff -r "$tmp/dist" "$committed"; then
	echo "webapp/dist/ does not match web/: run web/build.sh and commit webapp/dist/" >&2
	exit 1
fi
echo "webapp/dist/ matches the sources in web/"
