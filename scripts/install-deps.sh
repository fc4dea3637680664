#!/bin/sh
# Installs the Debian packages that running the server (runtime), building and running it (run) or the
# test suite (test) needs. Idempotent: packages already present are skipped, so a warm machine pays nothing.
# The Dockerfile uses the same script, so CI exercises what the image installs.
set -eu

runtime_pkgs="gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-opencv opencv-data
gstreamer1.0-x ca-certificates curl"
build_pkgs="pkg-config gcc git make libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev"
test_pkgs="chromium chromium-driver ffmpeg coturn janus iproute2 iputils-ping qrencode graphviz python3-gi gir1.2-gst-rtsp-server-1.0
prometheus redis-server linux-perf"

case "${1:-run}" in
runtime) want="$runtime_pkgs" ;;
run) want="$runtime_pkgs $build_pkgs" ;;
test) want="$runtime_pkgs $build_pkgs $test_pkgs" ;;
*) echo "usage: $0 runtime|run|test" >&2; exit 2 ;;
esac

if [ "${1:-run}" != runtime ] && ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "install-deps: Go is missing: install Go 1.26 at /usr/local/go (Debian 12's golang-go is too old)" >&2
	exit 1
fi
# Node (with npm) may come from elsewhere than Debian; only a machine without it gets Debian's.
if [ "${1:-run}" = test ] && ! command -v node >/dev/null 2>&1; then
	want="$want nodejs npm"
fi

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

