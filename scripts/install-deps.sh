#!/bin/sh
# Installs the Debian packages the server (run) or the test suite (test) needs.
# Idempotent: packages already present are skipped, so a warm machine pays nothing.
set -eu

run_pkgs="pkg-config gcc libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-opencv opencv-data gstreamer1.0-x
ca-certificates curl"
test_pkgs="chromium chromium-driver ffmpeg coturn janus iproute2 iputils-ping qrencode"

case "${1:-run}" in
run) want="$run_pkgs" ;;
test) want="$run_pkgs $test_pkgs" ;;
*) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
