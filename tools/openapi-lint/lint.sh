#!/bin/sh
# Lints the API's contract, internal/httpapi/openapi.json, with Redocly CLI
# at the exact version package-lock.json pins (installed on first use into
# .cache/openapi-lint with npm ci), under redocly.yaml. make test runs it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache/openapi-lint"

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
	echo "openapi-lint: Node.js and npm are needed (.ci/run installs them)" >&2
	exit 1
}
# Redocly CLI 2 runs on Node.js 20.19+ (20.x) or 22.12+.
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a === 20 && b >= 19 || a === 22 && b >= 12 || a > 22 ? 0 : 1)' || {
	echo "openapi-lint: Redocly CLI needs Node.js 20.19 or later (20.x), or 22.12 or later; this is $(node --version)" >&2
	exit 1
}
want=$(node -p 'require(process.argv[1]).dependencies["@redocly/cli"]' "$here/package.json")
have=$(node -p 'require(process.argv[1]).version' "$cache/node_modules/@redocly/cli/package.json" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
	echo "openapi-lint: installing @redocly/cli $want into .cache/openapi-lint"
	rm -rf "$cache"
	mkdir -p "$cache"
	cp "$here/package.json" "$here/package-lock.json" "$cache/"
	(cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
cd "$here"
exec "$cache/node_modules/.bin/redocly" lint --config redocly.yaml --format=stylish ../../internal/httpapi/openapi.json
