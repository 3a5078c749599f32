#!/usr/bin/env bash
# Installs the system programs the plugin and its demo need (ffmpeg to
# decode formats Essentia cannot, sox and flac to synthesise audio), and
# with --browser those of the web page's browser tests (chromium and its
# driver), and with --player the headless player of the Subsonic playback
# test (Mopidy with GStreamer's base plugins), from Debian/Ubuntu packages
# when they are missing.
set -euo pipefail
tools=(ffmpeg sox flac)
[ "${1:-}" = --browser ] && tools+=(chromium chromium-driver)
[ "${1:-}" = --player ] && tools=(mopidy gstreamer1.0-plugins-base)
missing=()
for tool in "${tools[@]}"; do
  case $tool in
    gstreamer1.0-plugins-base) dpkg -s "$tool" >/dev/null 2>&1 && continue ;;
    # chromium-driver's program is chromedriver
    *) command -v "${tool/chromium-driver/chromedriver}" >/dev/null 2>&1 && continue ;;
  esac
  missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Please install: ${missing[*]} (with your system's package manager)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
