package config

import (
	"fmt"
	"strings"
)

// parseINI reads the key=value files KMS modules ship. Like boost's ini
// parser: lines starting with ';' or '#' are comments (so ";key=value" is a
// disabled setting), keys and values are trimmed, there are no inline
// comments and no quoting. KMS files use no sections; a [section] prefixes
// the keys that follow with "section.". Later duplicates win.
func parseINI(data string) (map[string]any, error) {
	out := map[string]any{}
	section := ""
	for n, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("line %d: bad section header %q", n+1, line)
			}
			section = strings.TrimSpace(line[1:len(line)-1]) + "."
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: expected key=value, got %q", n+1, line)
		}
		out[section+k] = strings.TrimSpace(v)
	}
	return out, nil
}
