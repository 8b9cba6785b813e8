#!/usr/bin/env bash
# Rebuilds assets/vendor/ from the npm packages pinned in package-lock.json.
#
# Needs Node and npm (only to refresh the vendored files: `go build` uses the
# committed copies). Installs with `npm ci` into a temporary directory, copies
# the prebuilt browser bundles verbatim (licence headers intact) with each
# package's licence, and writes a gzip copy of each bundle (gzip -n, so no
# name or time stamp) that the Go handler serves to clients accepting gzip.
# Running it twice gives identical files.
#
# Files land in versioned directories (vendor/<package>-<version>/), so that
# cached copies never outlive an upgrade. After changing a version in
# package.json (then `npm install --package-lock-only
# --omit-lockfile-registry-resolved`), update the paths in assets/index.html;
# `go test ./playground` fails until they match.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
modules=$work/node_modules

version() {
	node -p 'require(process.argv[1]).version' "$modules/$1/package.json"
}

vendor=$here/assets/vendor
rm -rf "$vendor"

# vendor PACKAGE FILE... copies each FILE (a path inside PACKAGE) into
# vendor/PACKAGE-VERSION/ and the package's LICENSE beside them.
vendor() {
	local pkg=$1
	shift
	local dir
	dir=$vendor/$pkg-$(version "$pkg")
	mkdir -p "$dir"
	cp "$modules/$pkg/LICENSE" "$dir/LICENSE.txt"
	local f
	for f in "$@"; do
		cp "$modules/$pkg/$f" "$dir/"
		gzip -9 -n -c "$modules/$pkg/$f" >"$dir/$(basename "$f").gz"
	done
	chmod 0644 "$dir"/*
}

vendor react umd/react.production.min.js
vendor react-dom umd/react-dom.production.min.js
vendor graphiql graphiql.min.js graphiql.min.css

(cd "$here/assets" && find vendor -type f | LC_ALL=C sort | xargs sha256sum)
