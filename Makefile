# Set-up, build, run and test of the Go Kurento Media Server. See README.md.
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin/kurento-media-server

.PHONY: run build test test-go test-node test-node-cluster deps-run deps-test vet bench bench-targets bench-workers soak leak fuzz clean

run: deps-run build
	exec ./$(BIN) -f etc/kurento.conf.json

build:
	$(GO) build -o $(BIN) ./cmd/kurento-media-server

deps-run:
	./scripts/install-deps.sh run

deps-test:
	./scripts/install-deps.sh test

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

test: deps-test vet build test-go test-node

test-go:
	$(GO) test -count=1 -p 1 -timeout 20m ./...

# The suite, then the files that exercise routing (sessions, transactions, reconnection, events)
# through a cluster: redis, two nodes and a router (docs/CLUSTER.md). make test-node-cluster: all files.
CLUSTER_NODE_TESTS := test/01-server-manager.test.js test/04-connections.test.js test/05-transactions.test.js \
	test/07-reconnect.test.js test/09-subscriptions.test.js
test-node: build
	KMS_BIN=$(CURDIR)/$(BIN) ./test/node/run.sh
	KMS_CLUSTER=1 KMS_BIN=$(CURDIR)/$(BIN) ./test/node/run.sh $(CLUSTER_NODE_TESTS)

test-node-cluster: build
	KMS_CLUSTER=1 KMS_BIN=$(CURDIR)/$(BIN) ./test/node/run.sh

# Our server and Janus (EchoTest, VideoRoom) side by side, ~2 min (root, 2 cores); bench/run.sh --targets
# for issue 11's targets (~12 min), --full for the ramp.
bench: deps-test
	./bench/run.sh

bench-targets: deps-test
	./bench/run.sh --targets

# The cost of GStreamer worker processes: CPU per transcoded and per filtered stream and latency through
# them, KMS_GST_WORKERS=in-process vs element vs pool:2, all modes streaming at once and measured over
# the same ISOLATION_ROUNDS windows (≈ 3.5 min); results in bench/results/workers/ (bench/README.md).
# In a session of its own at autogroup nice -20 (root), as bench/run.sh does.
ISOLATION_WINDOW ?= 60
ISOLATION_ROUNDS ?= 6
bench-workers: deps-test
	ISOLATION_WINDOW=$(ISOLATION_WINDOW) ISOLATION_ROUNDS=$(ISOLATION_ROUNDS) ISOLATION_OUT=$(CURDIR)/bench/results/workers setsid sh -c \
		'echo -20 >/proc/self/autogroup 2>/dev/null; exec $(GO) test -run "^$$" -bench Isolation -benchtime 1x -count 1 -timeout 30m -v ./bench/isolation'

# The soak (root, 2 cores): 50 sessions for SOAK_DURATION on a lossy link (5 % loss, 30 ms jitter,
# reordering), viewers joining and leaving; figures and chart in bench/results/soak/ (bench/README.md).
SOAK_DURATION ?= 10m
soak:
	SOAK_DURATION=$(SOAK_DURATION) ./bench/run.sh --soak

# The leak test at full length: 10,000 create → negotiate → connect → release cycles (≈ 10-15 min);
# make test runs 300 of them.
LEAK_CYCLES ?= 10000
leak:
	LEAK_CYCLES=$(LEAK_CYCLES) $(GO) test -count=1 -run TestLeakCycles -timeout 2h -v ./test/leak

# Every fuzz target in turn for FUZZTIME each (one worker, so the machine stays usable); make test runs
# their seeds as normal tests. A crash leaves its input in the package's testdata/fuzz/FuzzXxx/.
# -tags kmsfuzz leaves the packages' end-to-end tests (//go:build !kmsfuzz) out of the fuzzing
# binary: the fuzzer reads every coverage counter of the binary after each input, and the test
# server those tests link tripled the counters of endpoints/{rtp,webrtc,recorder}.
FUZZTIME ?= 5m
FUZZ_TARGETS := protocol:FuzzRequest config:FuzzLoad media:FuzzFeedback uriguard:FuzzURI \
	endpoints/rtp:FuzzProcessOffer endpoints/rtp:FuzzStreamPackets endpoints/recorder:FuzzMuxers \
	endpoints/webrtc:FuzzProcessOffer endpoints/webrtc:FuzzAddIceCandidate endpoints/webrtc:FuzzSenderFeedback \
	rtpengine:FuzzIncomingFeedback
FUZZ_LEAN := ./endpoints/rtp ./endpoints/webrtc ./endpoints/recorder
fuzz:
	@left=$$($(GO) list -tags kmsfuzz -f '{{if .XTestGoFiles}}{{.Dir}}: {{.XTestGoFiles}}{{end}}' $(FUZZ_LEAN)); \
	if [ -n "$$left" ]; then echo "make fuzz: these tests need //go:build !kmsfuzz: $$left"; exit 1; fi
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} $${t#*:} ($(FUZZTIME))"; \
		$(GO) test ./$${t%%:*} -run '^$$' -tags kmsfuzz -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -parallel 1; \
	done

clean:
	rm -rf bin
