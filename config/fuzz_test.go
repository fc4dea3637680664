package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// moduleFiles are the module files a fuzzed .conf.ini can stand for.
var moduleFiles = []string{"WebRtcEndpoint", "BaseRtpEndpoint", "HttpEndpoint", "MediaElement", "UriEndpoint", "RecorderEndpoint", "PlayerEndpoint", "Composite"}

// FuzzLoad loads a fuzzed kurento.conf.json, one fuzzed module .conf.ini and one fuzzed KMS_*
// variable: Load gives a configuration or an error, never a panic, and the same inputs give the same
// answer.
func FuzzLoad(f *testing.F) {
	mainFile, _ := os.ReadFile("../etc/kurento.conf.json")
	for i, name := range moduleFiles {
		ini, _ := os.ReadFile("../etc/modules/kurento/" + name + ".conf.ini")
		v := kmsEnv[i%len(kmsEnv)]
		f.Add(string(mainFile), uint8(i), string(ini), uint8(i), map[string]string{
			"KMS_MIN_PORT": "40000", "KMS_MAX_PORT": "50000", "KMS_MTU": "1400", "KMS_EXTERNAL_IPV4": "198.51.100.7",
			"KMS_EXTERNAL_IPV6": "2001:db8::7", "KMS_NETWORK_INTERFACES": "lo,eth0", "KMS_ICE_TCP": "false",
			"KMS_TURN_URL": "user:pass@127.0.0.1:3478?transport=udp",
		}[v.env])
	}
	f.Add(`{"mediaServer":{"resources":{"garbageCollectorPeriod":-1},"net":{"websocket":{"port":"x"}}}}`, uint8(0),
		"stunServerAddress=::1\nstunServerPort=99999\n[x]\ny", uint8(5), "a,,b")
	f.Fuzz(func(t *testing.T, mainData string, module uint8, ini string, envVar uint8, envValue string) {
		dir := t.TempDir()
		conf := filepath.Join(dir, "kurento.conf.json")
		mod := filepath.Join(dir, "modules", "kurento", moduleFiles[int(module)%len(moduleFiles)]+".conf.ini")
		if err := os.MkdirAll(filepath.Dir(mod), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, []byte(mainData), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(mod, []byte(ini), 0o644); err != nil {
			t.Fatal(err)
		}
		name := kmsEnv[int(envVar)%len(kmsEnv)].env
		if envValue == "auto" {
			return // KMS_EXTERNAL_IPV4=auto asks public DNS servers: never a target of a test
		}
		getenv := func(k string) string {
			if k == name {
				return envValue
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
