package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load runs Load with the main config file (when data != "") and module
// files (relative name -> content) in a temp dir.
func load(t *testing.T, mainData string, modules map[string]string, e map[string]string, args ...string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "kurento.conf.json")
	if mainData != "" {
		write(t, conf, mainData)
	}
	for name, data := range modules {
		write(t, filepath.Join(dir, "modules", name), data)
	}
	return Load(append([]string{"-f", conf}, args...), env(e))
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(*Config) bool
		err   string
	}{
		{"short", []string{"-f", "/x/k.conf.json"}, nil,
			func(c *Config) bool {
				return c.ConfFile == "/x/k.conf.json" && slices.Equal(c.ModulesConfigPath, []string{"/x/modules"})
			}, ""},
		{"short attached", []string{"-f/x/k.json"}, nil, func(c *Config) bool { return c.ConfFile == "/x/k.json" }, ""},
		{"long equals", []string{"--conf-file=/x/k.json"}, nil, func(c *Config) bool { return c.ConfFile == "/x/k.json" }, ""},
		{"long space", []string{"--conf-file", "/x/k.json"}, nil, func(c *Config) bool { return c.ConfFile == "/x/k.json" }, ""},
		{"env", nil, map[string]string{"KURENTO_CONF_FILE": "/e/k.json"},
			func(c *Config) bool { return c.ConfFile == "/e/k.json" }, ""},
		{"flag beats env", []string{"-f", "/x/k.json"}, map[string]string{"KURENTO_CONF_FILE": "/e/k.json"},
			func(c *Config) bool { return c.ConfFile == "/x/k.json" }, ""},
		{"default conf", nil, nil, func(c *Config) bool {
			return c.ConfFile == DefaultConfFile && slices.Equal(c.ModulesConfigPath, []string{"/etc/kurento/modules"})
		}, ""},
		{"modules config path", []string{"-c", "a::b"}, nil,
			func(c *Config) bool { return slices.Equal(c.ModulesConfigPath, []string{"a", "b"}) }, ""},
		{"modules config path env", nil, map[string]string{"KURENTO_MODULES_CONFIG_PATH": "a:b"},
			func(c *Config) bool { return slices.Equal(c.ModulesConfigPath, []string{"a", "b"}) }, ""},
		{"modules path", []string{"--modules-path=/m1:/m2"}, nil,
			func(c *Config) bool { return slices.Equal(c.ModulesPath, []string{"/m1", "/m2"}) }, ""},
		{"log files", []string{"-d", "/logs", "-s", "5", "--number-log-files=3"}, nil,
			func(c *Config) bool { return c.Log == Log{DefaultGstDebug, false, "/logs", 5, 3} }, ""},
		{"log files env", nil, map[string]string{"KURENTO_LOGS_PATH": "/l", "KURENTO_LOG_FILE_SIZE": "7", "KURENTO_NUMBER_LOG_FILES": "2"},
			func(c *Config) bool { return c.Log.Path == "/l" && c.Log.FileSizeMB == 7 && c.Log.FileCount == 2 }, ""},
		{"log defaults", nil, nil, func(c *Config) bool { return c.Log.FileSizeMB == 100 && c.Log.FileCount == 10 }, ""},
		{"bad size", []string{"-s", "abc"}, nil, nil, `--log-file-size: must be a positive integer, got "abc"`},
		{"bad count", []string{"-n", "0"}, nil, nil, "--number-log-files"},
		{"bad size env", nil, map[string]string{"KURENTO_LOG_FILE_SIZE": "x"}, nil, "KURENTO_LOG_FILE_SIZE"},
		{"missing value", []string{"-s"}, nil, nil, "--log-file-size needs a value"},
		{"switch with value", []string{"--version=1"}, nil, nil, "takes no value"},
		{"version", []string{"-v"}, nil, func(c *Config) bool { return c.Action == ActionVersion }, ""},
		{"list", []string{"--list"}, nil, func(c *Config) bool { return c.Action == ActionList }, ""},
		{"help wins", []string{"-l", "-h", "--version"}, nil, func(c *Config) bool { return c.Action == ActionHelp }, ""},
		{"no env for switches", nil, map[string]string{"KURENTO_HELP": "1"}, func(c *Config) bool { return c.Action == "" }, ""},
		{"unknown ignored", []string{"--foo", "bar", "-x", "-vl", "--gst-plugin-path=/y", "pos"}, nil,
			func(c *Config) bool { return c.Action == "" && c.ConfFile == DefaultConfFile }, ""},
		{"after --", []string{"--", "-v"}, nil, func(c *Config) bool { return c.Action == "" }, ""},
		{"gst default", nil, nil, func(c *Config) bool { return c.Log.GstDebug == DefaultGstDebug && !c.Log.NoColor }, ""},
		{"gst env and flags", []string{"--gst-debug-level=4", "--gst-debug", "foo:1"}, map[string]string{"GST_DEBUG": "3,foo:5"},
			func(c *Config) bool { return c.Log.GstDebug == "3,foo:5,4,foo:1" }, ""},
		{"gst flags on default", []string{"--gst-debug=x:6"}, nil,
			func(c *Config) bool { return c.Log.GstDebug == DefaultGstDebug+",x:6" }, ""},
		{"gst bad level", []string{"--gst-debug-level=x"}, nil, nil, "--gst-debug-level: must be an integer 0..9"},
		{"gst level too high", []string{"--gst-debug-level", "10"}, nil, nil, "--gst-debug-level"},
		{"no color flag", []string{"--gst-debug-no-color"}, nil, func(c *Config) bool { return c.Log.NoColor }, ""},
		{"no color env", nil, map[string]string{"GST_DEBUG_NO_COLOR": "1"}, func(c *Config) bool { return c.Log.NoColor }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestActionSkipsBrokenFile(t *testing.T) {
	c, err := load(t, "{broken", nil, nil, "--version")
	if err != nil || c.Action != ActionVersion {
		t.Fatalf("got %v, %v", c, err)
	}
}

func TestMissingMainFile(t *testing.T) {
	c, err := load(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := defaults()
	if c.WebSocket != want.WebSocket || c.Resources != want.Resources || c.Metadata != "" {
		t.Fatalf("not defaults: %+v", c)
	}
	if len(c.Warnings) == 0 || !strings.Contains(c.Warnings[0], "not found") {
		t.Fatalf("warnings = %q", c.Warnings)
	}
}

const shipped = `{
  "metadata": { "b": 1, "a": [true, "x"] },
  "mediaServer": {
    "resources": {
      "//": "Default: 0.8 (80%)",
      "//exceptionLimit": "0.8",
      "killLimit": "0.7",
      // old style comment
      "garbageCollectorPeriod": 120,
      "disableRequestCache": "true"
    },
    /* "rabbitmq": { "port": 5672 }, */
    "net": {
      "websocket": {
        "port": "9999",
        "address": "127.0.0.1",
        "ipv6": false,
        "path": "k//x",
        "threads": 4,
        "connqueue": 64,
        "secure": { "port": 8433, "certificate": "cert.pem", "password": "p" },
        "registrar": { "address": "ws://localhost:9090" }
      }
    }
  }
}`

func TestMainFile(t *testing.T) {
	c, err := load(t, shipped, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRes := Resources{ExceptionLimit: 0.8, KillLimit: 0.7, GarbageCollectorPeriod: 120 * time.Second, DisableRequestCache: true}
	if c.Resources != wantRes {
		t.Errorf("resources = %+v", c.Resources)
	}
	dir := filepath.Dir(c.ConfFile)
	wantWS := WebSocket{Port: 9999, Address: "127.0.0.1", Path: "k//x", Threads: 4, ConnQueue: 64,
		Secure: Secure{Port: 8433, Certificate: filepath.Join(dir, "cert.pem"), Password: "p"}}
	if c.WebSocket != wantWS {
		t.Errorf("websocket = %+v", c.WebSocket)
	}
	if c.Metadata != `{"a":[true,"x"],"b":1}` {
		t.Errorf("metadata = %s", c.Metadata)
	}
}

func TestMainFileErrors(t *testing.T) {
	ws := func(k, v string) string {
		return `{"mediaServer":{"net":{"websocket":{"` + k + `":` + v + `}}}}`
	}
	res := func(k, v string) string {
		return `{"mediaServer":{"resources":{"` + k + `":` + v + `}}}`
	}
	tests := []struct{ data, err string }{
		{ws("port", `"abc"`), `kurento.conf.json: mediaServer.net.websocket.port: must be an integer 0..65535, got "abc"`},
		{ws("port", `70000`), `mediaServer.net.websocket.port: must be an integer 0..65535, got 70000`},
		{ws("port", `{}`), `got {}`},
		{ws("port", `80.5`), `got 80.5`},
		{ws("secure", `{"port": -1}`), `mediaServer.net.websocket.secure.port`},
		{ws("ipv6", `"yes"`), `mediaServer.net.websocket.ipv6: must be true or false`},
		{ws("path", `[]`), `mediaServer.net.websocket.path: must be a string`},
		{ws("threads", `0`), `mediaServer.net.websocket.threads: must be an integer >= 1`},
		{ws("connqueue", `-1`), `connqueue`},
		{res("garbageCollectorPeriod", `-5`), `mediaServer.resources.garbageCollectorPeriod: must be an integer >= 1, got -5`},
		{res("garbageCollectorPeriod", `0`), `garbageCollectorPeriod`},
		{res("exceptionLimit", `1.5`), `mediaServer.resources.exceptionLimit: must be a number in (0,1], got 1.5`},
		{res("exceptionLimit", `0`), `exceptionLimit`},
		{res("exceptionLimit", `"NaN"`), `exceptionLimit`},
		{res("killLimit", `true`), `killLimit`},
		{res("disableRequestCache", `2`), `disableRequestCache`},
		{`{"a": 1,}`, `kurento.conf.json:1: invalid character '}'`},
		{`[1]`, `kurento.conf.json: json: cannot unmarshal array`},
		{`null`, `top level must be a JSON object`},
		{`{} {}`, `unexpected data`},
	}
	for _, tt := range tests {
		_, err := load(t, tt.data, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.data, err, tt.err)
		}
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := load(t, `{"mediaServer":{"net":{"websocket":{"port":-1,"threads":"x"}}}}`, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "port") || !strings.Contains(err.Error(), "threads") {
		t.Fatalf("err = %v", err)
	}
}

func TestStripComments(t *testing.T) {
	in := "{\"a\": \"//not /* a comment\", // c\n\"b\\\"//\": 1 /* x\ny */}"
	want := "{\"a\": \"//not /* a comment\",     \n\"b\\\"//\": 1     \n    }"
	if got := string(stripComments([]byte(in))); got != want {
		t.Fatalf("got %q", got)
	}
}

func TestParseINI(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]any
		err  string
	}{
		{"", map[string]any{}, ""},
		{"a=1\n b = two words \r\n", map[string]any{"a": "1", "b": "two words"}, ""},
		{";a=1\n# b=2\n;; text\nc=", map[string]any{"c": ""}, ""},
		{"a=1\na=2", map[string]any{"a": "2"}, ""},
		{"url=u:p@1.2.3.4:3478?transport=tcp", map[string]any{"url": "u:p@1.2.3.4:3478?transport=tcp"}, ""},
		{"x=1 // not a comment", map[string]any{"x": "1 // not a comment"}, ""},
		{"[s]\nk=v", map[string]any{"s.k": "v"}, ""},
		{"novalue", nil, "line 1: expected key=value"},
		{"a=1\n=2", nil, "line 2"},
		{"[s", nil, "bad section"},
	}
	for _, tt := range tests {
		got, err := parseINI(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %v, %v", tt.in, got, err)
		}
	}
}

func TestModuleDefaults(t *testing.T) {
	c, err := load(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Modules.MediaElement, defaultModules().MediaElement) ||
		!reflect.DeepEqual(c.Modules.WebRtcEndpoint, WebRtcEndpoint{StunServerPort: 3478, IceTCP: true, UDPMux: true, DirectSRTP: true}) ||
		c.Modules.HttpEndpoint.Port != 9091 || c.Modules.RecorderEndpoint.GapsFix != "NONE" ||
		c.Modules.Composite != (Composite{800, 600, 15}) ||
		len(c.Modules.SdpEndpoint.AudioCodecs) != 4 {
		t.Fatalf("modules = %+v", c.Modules)
	}
	if !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "module config dir") }) {
		t.Errorf("no warning for missing modules dir: %q", c.Warnings)
	}
}

func TestModuleDirs(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write(t, filepath.Join(a, "kurento", "BaseRtpEndpoint.conf.ini"), ";minPort=1\nminPort=40000\nmaxPort=50000\n")
	write(t, filepath.Join(a, "kurento", "MediaElement.conf.ini"), "encoderBitrate=1000\n")
	write(t, filepath.Join(a, "kurento", "Broken.conf.ini"), "garbage\n")
	write(t, filepath.Join(a, "kurento", "README.md"), "ignored")
	write(t, filepath.Join(a, "kurento", ".hidden", "MediaElement.conf.ini"), "encoderBitrate=5\n")
	write(t, filepath.Join(a, "vendor", "sub", "Chroma.conf.json"), `{"x": {"y": 2}}`)
	write(t, filepath.Join(a, "Top.conf.ini"), "k=v")
	write(t, filepath.Join(a, "kurento", "SdpEndpoint.conf.json"), `{
		"numAudioMedias": 0,
		"audioCodecs": [ { "name": "opus/48000/2", "//": "x", "//properties": {} }, { "name": "PCMU/8000" } ],
		"videoCodecs": [ { "name": "VP8/90000" } ]
	}`)
	// b overrides a key by key; a symlinked file counts like a regular one.
	write(t, filepath.Join(dir, "real.ini"), "mtu=1400\nmaxPort=60000\n")
	if err := os.MkdirAll(filepath.Join(b, "kurento"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real.ini"), filepath.Join(b, "kurento", "BaseRtpEndpoint.conf.ini")); err != nil {
		t.Fatal(err)
	}

	c, err := Load([]string{"-f", filepath.Join(dir, "none.json"), "-c", a + ":" + b + ":" + filepath.Join(dir, "missing")}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Modules
	if m.BaseRtpEndpoint != (BaseRtpEndpoint{MinPort: 40000, MaxPort: 60000, MTU: 1400}) {
		t.Errorf("BaseRtpEndpoint = %+v", m.BaseRtpEndpoint)
	}
	if m.MediaElement.EncoderBitrate != 1000 {
		t.Errorf("MediaElement = %+v", m.MediaElement)
	}
	wantSdp := SdpEndpoint{NumAudioMedias: 0, NumVideoMedias: 1,
		AudioCodecs: []string{"opus/48000/2", "PCMU/8000"}, VideoCodecs: []string{"VP8/90000"}}
	if !reflect.DeepEqual(m.SdpEndpoint, wantSdp) {
		t.Errorf("SdpEndpoint = %+v", m.SdpEndpoint)
	}
	if m.Raw["vendor.sub.Chroma"]["x"] == nil || m.Raw["Top"]["k"] != "v" || m.Raw["kurento.BaseRtpEndpoint"]["mtu"] != "1400" {
		t.Errorf("Raw = %v", m.Raw)
	}
	if _, ok := m.Raw["kurento.Broken"]; ok {
		t.Error("broken file loaded")
	}
	joined := strings.Join(c.Warnings, "\n")
	if !strings.Contains(joined, "Broken.conf.ini ignored: line 1") || !strings.Contains(joined, "missing not usable") {
		t.Errorf("warnings = %s", joined)
	}
}

func TestModuleSettings(t *testing.T) {
	const w = "kurento/WebRtcEndpoint.conf.ini"
	tests := []struct {
		name  string
		files map[string]string
		check func(Modules) bool
		err   string
	}{
		{"webrtc all", map[string]string{w: `networkInterfaces=eth0, enp0s25,
stunServerAddress=198.51.100.1
stunServerPort=3479
turnURL=1796523119:user:p@ss@198.51.100.2:3478?transport=tcp
externalIPv4=203.0.113.1
externalIPv6=2001:db8::1
iceTcp=0
pemCertificateRSA=rsa.pem
pemCertificateECDSA=/abs/ec.pem
qos-dscp=AUDIO_HIGH
enable-h265=true`}, func(m Modules) bool {
			w := m.WebRtcEndpoint
			return slices.Equal(w.NetworkInterfaces, []string{"eth0", "enp0s25"}) &&
				w.StunServerAddress == netip.MustParseAddr("198.51.100.1") && w.StunServerPort == 3479 &&
				*w.TURN == TURNServer{"1796523119:user", "p@ss", netip.MustParseAddrPort("198.51.100.2:3478"), "tcp"} &&
				w.ExternalIPv4.String() == "203.0.113.1" && w.ExternalIPv6.String() == "2001:db8::1" &&
				!w.IceTCP && filepath.IsAbs(w.PemCertificateRSA) && strings.HasSuffix(w.PemCertificateRSA, "/modules/kurento/rsa.pem") &&
				w.PemCertificateECDSA == "/abs/ec.pem" && w.QosDSCP == "AUDIO_HIGH" && w.EnableH265
		}, ""},
		{"empty values unset", map[string]string{w: "turnURL=\nstunServerAddress=\nnetworkInterfaces="},
			func(m Modules) bool {
				w := m.WebRtcEndpoint
				return w.TURN == nil && !w.StunServerAddress.IsValid() && w.NetworkInterfaces == nil
			}, ""},
		{"stun hostname", map[string]string{w: "stunServerAddress=stun.example.com"}, nil,
			`WebRtcEndpoint.conf.ini: stunServerAddress: must be an IP address, got "stun.example.com"`},
		{"stun port", map[string]string{w: "stunServerPort=0"}, nil, "stunServerPort: must be an integer 1..65535"},
		{"turn hostname", map[string]string{w: "turnURL=u:p@turn.example.com:3478"}, nil, "WebRtcEndpoint.conf.ini: turnURL: must be user:password@ip:port"},
		{"iceTcp true", map[string]string{w: "iceTcp=true"}, nil, `iceTcp: must be an integer 0..1, got "true"`},
		{"ipv4 family", map[string]string{w: "externalIPv4=2001:db8::1"}, nil, "externalIPv4: must be an IPv4 address"},
		{"ipv6 family", map[string]string{w: "externalIPv6=1.2.3.4"}, nil, "externalIPv6: must be an IPv6 address"},
		{"dscp", map[string]string{w: "qos-dscp=FAST"}, nil, "qos-dscp: must be one of NO_DSCP"},
		{"h265", map[string]string{w: "enable-h265=yes"}, nil, "enable-h265: must be true or false"},
		{"ports", map[string]string{"kurento/BaseRtpEndpoint.conf.ini": "minPort=6000\nmaxPort=5000"}, nil,
			"BaseRtpEndpoint.conf.ini: minPort must not be greater than maxPort"},
		{"port range", map[string]string{"kurento/BaseRtpEndpoint.conf.ini": "maxPort=65536"}, nil, "maxPort: must be an integer 0..65535"},
		{"mtu", map[string]string{"kurento/BaseRtpEndpoint.conf.ini": "mtu=100"}, nil, "mtu: must be an integer 576..9000, got \"100\""},
		{"bitrates", map[string]string{"kurento/MediaElement.conf.ini": "minEncoderBitrate=500\nmaxEncoderBitrate=400"}, nil,
			"minEncoderBitrate must not be greater than maxEncoderBitrate"},
		{"bitrate unlimited max", map[string]string{"kurento/MediaElement.conf.ini": "minEncoderBitrate=500\nmaxEncoderBitrate=0"},
			func(m Modules) bool { return m.MediaElement.MinEncoderBitrate == 500 }, ""},
		{"codecs type", map[string]string{"kurento/SdpEndpoint.conf.ini": "audioCodecs=opus"}, nil, `audioCodecs: must be a list`},
		{"codec name", map[string]string{"kurento/SdpEndpoint.conf.json": `{"videoCodecs": [{"name": "VP8"}]}`}, nil, `videoCodecs: must be {"name"`},
		{"uri", map[string]string{"kurento/UriEndpoint.conf.ini": "defaultPath=file:///data/"},
			func(m Modules) bool { return m.UriEndpoint.DefaultPath == "file:///data/" }, ""},
		{"rtsp range", map[string]string{"kurento/PlayerEndpoint.conf.ini": "rtspClientPortRange=5000-5100"},
			func(m Modules) bool { return m.PlayerEndpoint.RtspClientPortRange == PortRange{5000, 5100} }, ""},
		{"rtsp range bad", map[string]string{"kurento/PlayerEndpoint.conf.ini": "rtspClientPortRange=5100-5000"}, nil, "rtspClientPortRange: must be min-max"},
		{"gaps", map[string]string{"kurento/RecorderEndpoint.conf.ini": "gapsFix=GENPTS"},
			func(m Modules) bool { return m.RecorderEndpoint.GapsFix == "GENPTS" }, ""},
		{"gaps bad", map[string]string{"kurento/RecorderEndpoint.conf.ini": "gapsFix=genpts"}, nil, "gapsFix: must be one of NONE, GENPTS, FILL_IF_TRANSCODING"},
		{"http shipped", map[string]string{"kurento/HttpEndpoint.conf.ini": "serverAddress=0.0.0.0\nannouncedAddress=h.example\nport=9092"},
			func(m Modules) bool { return m.HttpEndpoint == HttpEndpoint{"0.0.0.0", "h.example", 9092} }, ""},
		{"http serverPort wins", map[string]string{"kurento/HttpEndpoint.conf.ini": "port=9092\nserverPort=9093"},
			func(m Modules) bool { return m.HttpEndpoint.Port == 9093 }, ""},
		{"composite", map[string]string{"kurento/Composite.conf.ini": "width=1280\nheight=720\nframerate=30"},
			func(m Modules) bool { return m.Composite == Composite{1280, 720, 30} }, ""},
		{"composite bad", map[string]string{"kurento/Composite.conf.ini": "width=0"}, nil, "width: must be an integer 16..7680"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, "", tt.files, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c.Modules) {
				t.Fatalf("modules = %+v", c.Modules)
			}
		})
	}
}

func TestKMSEnv(t *testing.T) {
	tests := []struct {
		env   map[string]string
		check func(*Config) bool
		err   string
	}{
		{map[string]string{"KMS_MIN_PORT": "40000", "KMS_MAX_PORT": "40100", "KMS_MTU": "1400"},
			func(c *Config) bool { return c.Modules.BaseRtpEndpoint == BaseRtpEndpoint{40000, 40100, 1400} }, ""},
		{map[string]string{"KMS_MIN_PORT": "", "KMS_MTU": ""},
			func(c *Config) bool { return c.Modules.BaseRtpEndpoint == BaseRtpEndpoint{30000, 31000, 1200} }, ""},
		{map[string]string{"KMS_MIN_PORT": "abc"}, nil, `KMS_MIN_PORT: minPort: must be an integer 0..65535, got "abc"`},
		{map[string]string{"KMS_MAX_PORT": "20000"}, nil, "BaseRtpEndpoint.conf.ini and KMS_MAX_PORT: minPort must not be greater than maxPort"},
		{map[string]string{"KMS_MTU": "99999"}, nil, "KMS_MTU: mtu"},
		{map[string]string{"KMS_MAX_VIDEO_RESOLUTION": "1920x1080"},
			func(c *Config) bool {
				me := c.Modules.MediaElement
				return me.MaxVideoWidth == 1920 && me.MaxVideoHeight == 1080
			}, ""},
		{map[string]string{}, func(c *Config) bool { return c.Modules.MediaElement.MaxVideoWidth == 3840 }, ""},
		{map[string]string{"KMS_MAX_VIDEO_RESOLUTION": "16383x16384"}, nil, `KMS_MAX_VIDEO_RESOLUTION: maxVideoResolution: must be WIDTHxHEIGHT`},
		{map[string]string{"KMS_MAX_VIDEO_RESOLUTION": "4k"}, nil, `maxVideoResolution: must be WIDTHxHEIGHT with each side from 16 to 16383, got "4k"`},
		{map[string]string{"KMS_EXTERNAL_IPV4": "203.0.113.9", "KMS_EXTERNAL_IPV6": "2001:db8::9"},
			func(c *Config) bool {
				w := c.Modules.WebRtcEndpoint
				return w.ExternalIPv4.String() == "203.0.113.9" && w.ExternalIPv6.String() == "2001:db8::9"
			}, ""},
		// No provider answers (nothing listens there): the files' value stays, with a warning.
		{map[string]string{"KMS_EXTERNAL_IPV4": "auto", "KMS_TEST_PUBLIC_IP_RESOLVER": "127.0.0.1:9"}, func(c *Config) bool {
			return c.Modules.WebRtcEndpoint.ExternalIPv4.String() == "192.0.2.1" &&
				slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "KMS_EXTERNAL_IPV4=auto") })
		}, ""},
		{map[string]string{"KMS_EXTERNAL_IPV4": "my.host"}, nil, "KMS_EXTERNAL_IPV4: externalIPv4: must be an IPv4 address"},
		{map[string]string{"KMS_EXTERNAL_IPV6": "x"}, nil, "KMS_EXTERNAL_IPV6: externalIPv6"},
		{map[string]string{"KMS_NETWORK_INTERFACES": "eth1,eth2"},
			func(c *Config) bool {
				return slices.Equal(c.Modules.WebRtcEndpoint.NetworkInterfaces, []string{"eth1", "eth2"})
			}, ""},
		{map[string]string{"KMS_ICE_TCP": "0"}, func(c *Config) bool { return !c.Modules.WebRtcEndpoint.IceTCP }, ""},
		{map[string]string{"KMS_ICE_TCP": "yes"}, nil, `KMS_ICE_TCP: iceTcp: must be an integer 0..1, got "yes"`},
		{map[string]string{"KMS_STUN_IP": "198.51.100.7", "KMS_STUN_PORT": "19302"}, func(c *Config) bool {
			w := c.Modules.WebRtcEndpoint
			return w.StunServerAddress.String() == "198.51.100.7" && w.StunServerPort == 19302
		}, ""},
		{map[string]string{"KMS_STUN_IP": "198.51.100.7"}, func(c *Config) bool {
			return !c.Modules.WebRtcEndpoint.StunServerAddress.IsValid() &&
				slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "KMS_STUN_PORT") })
		}, ""},
		{map[string]string{"KMS_STUN_IP": "stun.l.google.com", "KMS_STUN_PORT": "19302"}, nil, "KMS_STUN_IP: stunServerAddress"},
		{map[string]string{"KMS_STUN_IP": "1.2.3.4", "KMS_STUN_PORT": "x"}, nil, "KMS_STUN_PORT: stunServerPort"},
		{map[string]string{"KMS_TURN_URL": "u:p@198.51.100.3:3478"}, func(c *Config) bool {
			return c.Modules.WebRtcEndpoint.TURN.Transport == "udp"
		}, ""},
		{map[string]string{"KMS_TURN_URL": "u:p@198.51.100.3:3478?transport=sctp"}, nil, "KMS_TURN_URL: turnURL"},
		{map[string]string{"KMS_PEM_CERTIFICATE_RSA": "/c/rsa.pem", "KMS_PEM_CERTIFICATE_ECDSA": "ec.pem"}, func(c *Config) bool {
			w := c.Modules.WebRtcEndpoint
			return w.PemCertificateRSA == "/c/rsa.pem" && w.PemCertificateECDSA == filepath.Join(filepath.Dir(c.ConfFile), "ec.pem")
		}, ""},
	}
	files := map[string]string{
		"kurento/BaseRtpEndpoint.conf.ini": "minPort=30000\nmaxPort=31000\n",
		"kurento/WebRtcEndpoint.conf.ini":  "externalIPv4=192.0.2.1\n",
	}
	for _, tt := range tests {
		c, err := load(t, "", files, tt.env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: err = %v, want %q", tt.env, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tt.env, err)
		} else if !tt.check(c) {
			t.Errorf("%v: config %+v", tt.env, c.Modules)
		}
	}
}

func TestParseTURN(t *testing.T) {
	tests := []struct {
		in   string
		want *TURNServer
	}{
		{"u:p@1.2.3.4:3478", &TURNServer{"u", "p", netip.MustParseAddrPort("1.2.3.4:3478"), "udp"}},
		{"u:p@w@[2001:db8::1]:443?transport=tls", &TURNServer{"u", "p@w", netip.MustParseAddrPort("[2001:db8::1]:443"), "tls"}},
		// coturn REST-API credentials: the user is "expiry:name", the password base64.
		{"1796523119:kurento:q+/Zx=@10.0.0.1:3478?transport=tcp", &TURNServer{"1796523119:kurento", "q+/Zx=", netip.MustParseAddrPort("10.0.0.1:3478"), "tcp"}},
		{"u:@1.2.3.4:3478", nil},
		{"u:p@1.2.3.4", nil},
		{"u:p@1.2.3.4:0", nil},
		{"up@1.2.3.4:3478", nil},
		{":p@1.2.3.4:3478", nil},
		{"1.2.3.4:3478", nil},
		{"u:p@1.2.3.4:3478?foo=bar", nil},
	}
	for _, tt := range tests {
		got, err := parseTURN(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%q: no error", tt.in)
			}
		} else if err != nil || *got != *tt.want {
			t.Errorf("%q: got %+v, %v", tt.in, got, err)
		}
	}
}

// The shared UDP port is on by default; the module file, KMS_WEBRTC_UDP_MUX and --webrtc-udp-mux
// turn it off, in that order of precedence, and a value that is not a boolean names its source.
func TestWebRtcUDPMux(t *testing.T) {
	tests := []struct {
		file string
		env  map[string]string
		args []string
		want bool
		err  string
	}{
		{want: true},
		{file: "udpMux=false\n", want: false},
		{file: "udpMux=false\n", env: map[string]string{"KMS_WEBRTC_UDP_MUX": "true"}, want: true},
		{env: map[string]string{"KMS_WEBRTC_UDP_MUX": "true"}, args: []string{"--webrtc-udp-mux=false"}, want: false},
		{env: map[string]string{"KURENTO_WEBRTC_UDP_MUX": "0"}, want: false},
		{env: map[string]string{"KMS_WEBRTC_UDP_MUX": "off"}, err: `KMS_WEBRTC_UDP_MUX: udpMux: must be true or false, got "off"`},
		{args: []string{"--webrtc-udp-mux", "yes"}, err: `--webrtc-udp-mux: udpMux: must be true or false, got "yes"`},
	}
	for _, tt := range tests {
		c, err := load(t, "", map[string]string{"kurento/WebRtcEndpoint.conf.ini": tt.file}, tt.env, tt.args...)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q %v %v: err = %v, want %q", tt.file, tt.env, tt.args, err, tt.err)
			}
		case err != nil:
			t.Errorf("%q %v %v: %v", tt.file, tt.env, tt.args, err)
		case c.Modules.WebRtcEndpoint.UDPMux != tt.want:
			t.Errorf("%q %v %v: udpMux %v, want %v", tt.file, tt.env, tt.args, c.Modules.WebRtcEndpoint.UDPMux, tt.want)
		}
	}
}
