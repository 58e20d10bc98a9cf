# Sourced by the scripts that install test tools: pinned installs into the cache, skipped
# when the pinned version is there already.

# pip_pinned VENV PACKAGE VERSION: PACKAGE==VERSION in the virtualenv VENV.
pip_pinned() {
    local venv=$1 package=$2 version=$3
    if "$venv/bin/python" -c "
import sys, importlib.metadata as m
sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
        return 0
    fi
    echo "==> installing $package==$version into $venv"
    python3 -m venv "$venv" || return 1
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
}

# npm_pinned PREFIX PACKAGE VERSION: PACKAGE@VERSION under PREFIX/node_modules.
npm_pinned() {
    local prefix=$1 package=$2 version=$3
    if [ "$(node -p "require('$prefix/node_modules/$package/package.json').version" 2>/dev/null)" = "$version" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null; then
        echo "error: npm is not installed; $package needs Node.js (20 or newer)" >&2
        return 1
    fi
    echo "==> installing $package@$version into $prefix"
    mkdir -p "$prefix" || return 1
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$package@$version"
}
