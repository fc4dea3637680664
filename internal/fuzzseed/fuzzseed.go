// Package fuzzseed holds the seed corpora shared by the fuzz targets: SDPs as real peers write them
// (a Chromium offer captured from headless Chromium, ffmpeg -sdp_file output, a Firefox offer in its
// format, an SDES comedia offer as SIP gateways send) and kurento-client 7.3 requests.
package fuzzseed

import (
	"bytes"
	"embed"
	"os"
	"sort"
	"testing"
)

//go:embed sdp/*.sdp rpc/*.jsonl
var files embed.FS

// SDPs are the seed session descriptions, by file name order.
func SDPs() []string {
	entries, _ := files.ReadDir("sdp")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		b, _ := files.ReadFile("sdp/" + n)
		out = append(out, string(b))
	}
	return out
}

// Requests are kurento-client's JSON-RPC requests, one message each.
func Requests() [][]byte {
	b, _ := files.ReadFile("rpc/kurento-client.jsonl")
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// Candidates are ICE candidate lines as browsers trickle them.
var Candidates = []string{
	"candidate:842163049 1 udp 1677729535 127.0.0.1 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag ih+y network-cost 999",
	"candidate:1467250027 1 udp 2122260223 127.0.0.1 46243 typ host generation 0 ufrag ih+y network-id 1",
	"candidate:1 1 TCP 2105458943 127.0.0.1 9 typ host tcptype active",
	"candidate:0 1 UDP 2122252543 127.0.0.1 44337 typ host",
	"a=candidate:3 1 udp 92216575 127.0.0.1 3478 typ relay raddr 127.0.0.1 rport 60000",
	"candidate:4 1 udp 2122194687 ::1 52000 typ host generation 0",
	"",
}

// Dir is a directory for a fuzz target's files, the same for every input, on tmpfs when there is
// one: making, syncing and removing files per input on a busy disk set the fuzzers' pace (2 to 60
// inputs a second instead of thousands).
func Dir(tb testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "kms-fuzz")
	if err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
