module github.com/kurento-go/kms

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/google/uuid v1.6.0
)
