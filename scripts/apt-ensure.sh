#!/usr/bin/env bash
# apt-ensure.sh WHAT PACKAGE...: install the Debian packages that are missing, for WHAT (a few
# words for the message). As root (or with password-less sudo) it runs apt-get; otherwise it
# says in one line which command to run, and fails. `make test` and fetch_fonts.sh use it.
set -euo pipefail
what=$1
shift
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "$what needs the Debian packages $* (no dpkg here: install their equivalents)" >&2
  exit 1
fi
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "$what needs Debian packages; run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi
echo "installing for $what: ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
