package config

import (
	"strings"
	"testing"
)

func TestObserveSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want Observe
		err  string
	}{
		{"defaults: no listener, text logs", nil, nil, Observe{LogFormat: LogText, MemoryReturnInterval: DefaultMemoryReturnInterval}, ""},
		{"flag", []string{"--metrics-address", "127.0.0.1:9090", "--log-format=json"}, nil,
			Observe{MetricsAddress: "127.0.0.1:9090", LogFormat: LogJSON, MemoryReturnInterval: DefaultMemoryReturnInterval}, ""},
		{"env", nil, map[string]string{"KMS_METRICS_ADDRESS": ":9100", "KMS_LOG_FORMAT": "json", "KMS_MEMORY_RETURN_INTERVAL": "0"},
			Observe{MetricsAddress: ":9100", LogFormat: LogJSON}, ""},
		{"flag beats env", []string{"--metrics-address=[::1]:9200"}, map[string]string{"KMS_METRICS_ADDRESS": ":9100"},
			Observe{MetricsAddress: "[::1]:9200", LogFormat: LogText, MemoryReturnInterval: DefaultMemoryReturnInterval}, ""},
		{"no port", []string{"--metrics-address", "localhost"}, nil, Observe{}, "--metrics-address: must be HOST:PORT"},
		{"bad port in env", nil, map[string]string{"KMS_METRICS_ADDRESS": "h:99999"}, Observe{}, "KMS_METRICS_ADDRESS: must be HOST:PORT"},
		{"bad memory return interval", nil, map[string]string{"KMS_MEMORY_RETURN_INTERVAL": "often"}, Observe{},
			"KMS_MEMORY_RETURN_INTERVAL: must be a duration"},
		{"bad format", nil, map[string]string{"KMS_LOG_FORMAT": "xml"}, Observe{}, "KMS_LOG_FORMAT: must be text or json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, "", nil, tt.env, tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Observe != tt.want {
				t.Fatalf("Observe = %+v, want %+v", c.Observe, tt.want)
			}
		})
	}
}
