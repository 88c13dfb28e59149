#!/usr/bin/env bash
# Installs what the tests need from Debian's packages, when missing: Chromium (HTML checks), CJK fonts (Chinese
# chart labels), PostgreSQL (the SQL-source test starts a throwaway server) and Java 17 (the Spark engine's tests).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -q "Noto Sans CJK" || need+=(fonts-noto-cjk)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "funnel_lab: please install ${need[*]} (Debian/Ubuntu: apt-get install ${need[*]}); the tests need them." >&2
  exit 1
fi
echo "Installing ${need[*]} with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
mkdir -p /usr/share/man/man1  # slim images lack it, and the JRE's package fails without it
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
fc-cache -f >/dev/null 2>&1 || true
# matplotlib caches the font list; drop it so the new CJK fonts are seen.
rm -rf "${HOME:-/root}"/.cache/matplotlib
