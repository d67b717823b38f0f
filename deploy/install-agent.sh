#!/bin/sh
# Installs the self-contained tape agent into PREFIX: PREFIX/lib/tape-agent/tape-agent.mjs
# (the bundle from "npm run bundle:agent") and PREFIX/bin/tape-agent. Needs only Node.js
# >= 20.19 on the tape server (Debian 12's own nodejs is 18: see docs/operations.md,
# "Installing the agent"). Runs as any user that may write PREFIX; root is not needed.
set -eu
usage="usage: install-agent.sh PREFIX [BUNDLE]   (BUNDLE default: dist/tape-agent.mjs next to this script's repository)"
prefix=${1:?$usage}
bundle=${2:-$(dirname "$0")/../dist/tape-agent.mjs}

if [ ! -f "$bundle" ]; then
  echo "error: no agent bundle at $bundle; build it with \"npm run bundle:agent\" (on any machine with the repository), or give its path." >&2
  exit 1
fi
node_bin=$(command -v node) || {
  echo "error: node is not on PATH; install Node.js 20.19 or later (docs/operations.md, \"Installing the agent\")." >&2
  exit 1
}
if ! "$node_bin" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "error: $node_bin is Node.js $("$node_bin" --version); the agent needs 20.19 or later (Debian 12's nodejs is 18: see docs/operations.md)." >&2
  exit 1
fi

mkdir -p "$prefix/lib/tape-agent" "$prefix/bin"
cp "$bundle" "$prefix/lib/tape-agent/tape-agent.mjs.new"
chmod 0644 "$prefix/lib/tape-agent/tape-agent.mjs.new"
mv "$prefix/lib/tape-agent/tape-agent.mjs.new" "$prefix/lib/tape-agent/tape-agent.mjs"
cat > "$prefix/bin/tape-agent.new" <<WRAPPER
#!/bin/sh
exec "$node_bin" "$prefix/lib/tape-agent/tape-agent.mjs" "\$@"
WRAPPER
chmod 0755 "$prefix/bin/tape-agent.new"
mv "$prefix/bin/tape-agent.new" "$prefix/bin/tape-agent"
echo "installed $prefix/bin/tape-agent (Node.js $("$node_bin" --version) at $node_bin)"
