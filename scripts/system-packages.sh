#!/usr/bin/env bash
# Debian packages the project needs beyond Python: installs the missing ones, quietly; a no-op when all are there.
#
#   espeak-ng   speech synthesis: the speech model's build speaks its training and test audio with it
#               (models/speech/commands/), and the real-model speech tests speak their utterances.
#   flite, festival and three of its US English voices (festvox-kallpc16k, festvox-kdlpc16k,
#               festvox-us-slt-hts): more natural synthesized speech, for the transcription model's validation
#               sample, its measured word error rates (models/speech/sphinx/) and its tests.
#   festival's Czech (dita, krb, machac, ph), Italian (lp, pc), Finnish (lj, mv) and Catalan (ona) voices:
#               nine more speakers for the speech command model's training set, reading English respelled in
#               their languages (models/speech/commands/accents.py); flite is its held-out synthesizer.
#   chromium    with --tests only: the console's browser tests (tests/browser/) drive it headless through
#               Playwright, whose own browser download is not used. `make serve` needs no browser.
#
# Safe to run repeatedly (the Makefile runs it before builds, and with --tests before the tests). Uses sudo only
# when not root.
set -euo pipefail

PACKAGES=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)
PACKAGES+=(festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph festvox-italp16k
    festvox-itapc16k festvox-suopuhe-lj festvox-suopuhe-mv festvox-ca-ona-hts)
if [ "${1:-}" = "--tests" ]; then
    PACKAGES+=(chromium)
fi

missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "system-packages.sh: not a Debian-based system; install these yourself: ${missing[*]}" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "system-packages.sh: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
fi

echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
