#!/bin/sh
# Starts the server as the official image does. The KMS_* variables (KMS_MIN_PORT, KMS_STUN_IP,
# KMS_TURN_URL, KMS_EXTERNAL_IPV4, ...) are read by the server itself, so no config file is edited.
set -eu

# Default log levels of the official image.
: "${GST_DEBUG:=2,Kurento*:4,kms*:4,sdp*:4,webrtc*:4,*rtpendpoint:4,rtp*handler:4,rtpsynchronizer:4,agnosticbin:4}"
export GST_DEBUG
[ -t 1 ] || export GST_DEBUG_NO_COLOR=1

if [ -n "${KMS_UID:-}" ]; then
	# Run as an unprivileged user with the requested UID, like the official image's KMS_UID.
	id kurento >/dev/null 2>&1 || useradd --uid "$KMS_UID" --no-create-home --shell /usr/sbin/nologin kurento
	exec setpriv --reuid="$KMS_UID" --regid="$KMS_UID" --clear-groups /usr/bin/kurento-media-server "$@"
fi
exec /usr/bin/kurento-media-server "$@"
