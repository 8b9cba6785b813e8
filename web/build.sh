#!/usr/bin/env bash
# Builds the app (web/) into webapp/dist/, which the Go binary embeds.
#
#   web/build.sh            rebuild webapp/dist/ (commit the result)
#   web/build.sh DIR        build into DIR instead (check-build.sh uses it)
#
# Needs Node (>= 20.19) and npm; `go build` does not: it embeds the committed
# copy. The sources are copied to a temporary directory, the npm packages
# pinned in package-lock.json installed there with `npm ci`, and Vite builds
# them; the same sources give byte-identical files (content-hashed names
# under assets/), whatever the directory and whenever it runs. Prints the
# sha256 of every file built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../webapp/dist}
case $out in
"" | / | .) echo "build.sh: refusing to write to '$out'" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -R "$here/package.json" "$here/package-lock.json" "$here/vite.config.js" "$here/index.html" \
	"$here/src" "$here/public" "$work/"
(
	cd "$work"
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
	NODE_ENV=production ./node_modules/.bin/vite build --logLevel warn >&2
)

rm -rf "$out"
mkdir -p "$out"
cp -R "$work/dist/." "$out/"
find "$out" -type d -exec chmod 0755 {} +
find "$out" -type f -exec chmod 0644 {} +
(cd "$out" && find . -type f | LC_ALL=C sort | xargs sha256sum)
