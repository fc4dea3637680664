#!/bin/sh
# Healthy when the WebSocket endpoint answers the incomplete handshake with HTTP 500, exactly as the
# official image's check expects from KMS.
status=$(curl --silent --output /dev/null --write-out '%{http_code}' \
	--header "Connection: Upgrade" --header "Upgrade: websocket" \
	--header "Host: 127.0.0.1:8888" --header "Origin: 127.0.0.1" \
	http://127.0.0.1:8888/kurento)
[ "$status" = 500 ]
