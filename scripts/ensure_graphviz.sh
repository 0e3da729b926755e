#!/bin/sh
# The rendering tests need Graphviz's `dot` program (a system package, not a Python one).
# Install it where we can (root on Debian/Ubuntu); elsewhere those tests skip and say why.
command -v dot >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing graphviz (for the rendering tests)..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz) >/dev/null 2>&1 \
        || echo "could not install graphviz: the rendering tests will skip"
else
    echo "graphviz's dot is not installed: the rendering tests will skip (apt-get install graphviz)"
fi
exit 0
