package config

import (
	"cmp"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kurento-go/kms/internal/fuzzseed"
)

// moduleFiles are the module files a fuzzed .conf.ini can stand for.
var moduleFiles = []string{"WebRtcEndpoint", "BaseRtpEndpoint", "HttpEndpoint", "MediaElement", "UriEndpoint", "RecorderEndpoint", "PlayerEndpoint", "Composite"}

// kmsVariables are the KMS_* variables Load reads, as it asks for them: the image's module
// settings, the limits, access, cluster and observability ones, and those of the flags.
func kmsVariables(t testing.TB) []string {
	seen := map[string]bool{}
	getenv := func(k string) string {
		if strings.HasPrefix(k, "KMS_") {
			seen[k] = true
		}
		return ""
	}
	if _, err := Load([]string{"-f", "../etc/kurento.conf.json", "-c", "../etc/modules"}, getenv); err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(seen))
	if len(names) < len(kmsEnv) {
		t.Fatalf("Load read only %v", names)
	}
	return names
}

// stunPair completes KMS_STUN_IP and KMS_STUN_PORT, which count only together.
var stunPair = map[string][2]string{"KMS_STUN_IP": {"KMS_STUN_PORT", "3478"}, "KMS_STUN_PORT": {"KMS_STUN_IP", "127.0.0.1"}}

// FuzzLoad loads a fuzzed kurento.conf.json, one fuzzed module .conf.ini and one fuzzed KMS_*
// variable (any of those Load reads): Load gives a configuration or an error, never a panic, and
// the same inputs give the same answer.
func FuzzLoad(f *testing.F) {
	variables := kmsVariables(f)
	mainFile, _ := os.ReadFile("../etc/kurento.conf.json")
	examples := map[string]string{
		"KMS_MIN_PORT": "40000", "KMS_MAX_PORT": "50000", "KMS_MTU": "1400", "KMS_EXTERNAL_IPV4": "198.51.100.7",
		"KMS_EXTERNAL_IPV6": "2001:db8::7", "KMS_NETWORK_INTERFACES": "lo,eth0", "KMS_ICE_TCP": "false",
		"KMS_TURN_URL": "user:pass@127.0.0.1:3478?transport=udp", "KMS_STUN_IP": "198.51.100.7", "KMS_STUN_PORT": "19302",
		"KMS_MAX_VIDEO_RESOLUTION": "1920x1080", "KMS_MEMORY_RETURN_INTERVAL": "30s", "KMS_IDLE_TIMEOUT": "5m",
		"KMS_MAX_CONNECTIONS": "1000", "KMS_RECORDER_PATH_PREFIXES": "/tmp,/var/lib/kurento", "KMS_PLAYER_URI_SCHEMES": "file,rtsp,http",
		"KMS_CLUSTER_STORE": "redis://127.0.0.1:6379/0", "KMS_METRICS_ADDRESS": "127.0.0.1:9100", "KMS_LOG_FORMAT": "json",
	}
	for i, v := range variables {
		module := moduleFiles[i%len(moduleFiles)]
		ini, _ := os.ReadFile("../etc/modules/kurento/" + module + ".conf.ini")
		f.Add(string(mainFile), uint8(i), string(ini), uint8(i), cmp.Or(examples[v], "1"))
	}
	f.Add(`{"mediaServer":{"resources":{"garbageCollectorPeriod":-1},"net":{"websocket":{"port":"x"}}}}`, uint8(0),
		"stunServerAddress=::1\nstunServerPort=99999\n[x]\ny", uint8(5), "a,,b")
	dir := fuzzseed.Dir(f)
	if err := os.MkdirAll(filepath.Join(dir, "modules", "kurento"), 0o755); err != nil {
		f.Fatal(err)
	}
	// The files stay between inputs and are written only when an input changes them (most mutate one
	// argument): removing and writing all of them per input was most of the target's time.
	conf := filepath.Join(dir, "kurento.conf.json")
	type file struct {
		data    string
		written bool
	}
	var confState, modState file
	var modPath string
	write := func(t *testing.T, path, data string, last *file) {
		if last.written && last.data == data {
			return
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		*last = file{data, true}
	}
	f.Fuzz(func(t *testing.T, mainData string, module uint8, ini string, envVar uint8, envValue string) {
		mod := filepath.Join(dir, "modules", "kurento", moduleFiles[int(module)%len(moduleFiles)]+".conf.ini")
		if mod != modPath {
			if modPath != "" {
				os.Remove(modPath)
			}
			modPath, modState = mod, file{}
		}
		write(t, conf, mainData, &confState)
		write(t, mod, ini, &modState)
		name := variables[int(envVar)%len(variables)]
		if envValue == "auto" {
			return // KMS_EXTERNAL_IPV4=auto asks public DNS servers: never a target of a test
		}
		getenv := func(k string) string {
			switch {
			case k == name:
				return envValue
			case k == stunPair[name][0]:
				return stunPair[name][1]
			}
			return ""
		}
		args := []string{"-f", conf, "-c", filepath.Join(dir, "modules")}
		c1, err1 := Load(args, getenv)
		if (c1 == nil) == (err1 == nil) {
			t.Fatalf("Load gave config %v and error %v", c1 != nil, err1)
		}
		c2, err2 := Load(args, getenv)
		if (err1 == nil) != (err2 == nil) || err1 == nil && !reflect.DeepEqual(c1, c2) {
			t.Fatalf("two loads of the same files differ: %v / %v", err1, err2)
		}
	})
}
