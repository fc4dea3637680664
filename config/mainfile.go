package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// loadMainFile reads kurento.conf.json into c. Unknown keys (and so the
// "//" comment keys of the shipped file) are ignored.
func loadMainFile(c *Config, file string, data []byte) (lookup, error) {
	root, err := decodeObject(file, data)
	if err != nil {
		return nil, err
	}
	if m, ok := root["metadata"]; ok {
		// Re-encoding keeps the text valid JSON for getMetadata; key order
		// is not preserved (boost's ptree would not keep types either).
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%s: metadata: %v", file, err)
		}
		c.Metadata = string(b)
	}

	get := func(key string) (setting, bool) {
		var v any = root
		for _, k := range strings.Split(key, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				return setting{}, false
			}
			if v, ok = obj[k]; !ok {
				return setting{}, false
			}
		}
		return setting{v: v, src: file}, true
	}
	var ck checker
	r := &c.Resources
	ck.fraction(get, "mediaServer.resources.exceptionLimit", &r.ExceptionLimit)
	ck.fraction(get, "mediaServer.resources.killLimit", &r.KillLimit)
	// Zero would make the session GC tick continuously, so it is refused too.
	gc := int(r.GarbageCollectorPeriod / time.Second)
	ck.intMin(get, "mediaServer.resources.garbageCollectorPeriod", 1, &gc)
	r.GarbageCollectorPeriod = time.Duration(gc) * time.Second
	ck.boolean(get, "mediaServer.resources.disableRequestCache", &r.DisableRequestCache)

	ws := &c.WebSocket
	const w = "mediaServer.net.websocket."
	ck.intRange(get, w+"port", 0, 65535, &ws.Port)
	ck.str(get, w+"address", &ws.Address)
	ck.boolean(get, w+"ipv6", &ws.IPv6)
	ck.str(get, w+"path", &ws.Path)
	ck.intMin(get, w+"threads", 1, &ws.Threads)
	ck.intMin(get, w+"connqueue", 0, &ws.ConnQueue)
	ck.intRange(get, w+"secure.port", 0, 65535, &ws.Secure.Port)
	ck.str(get, w+"secure.certificate", &ws.Secure.Certificate)
	ck.str(get, w+"secure.password", &ws.Secure.Password)
	ws.Secure.Certificate = resolve(filepath.Dir(file), ws.Secure.Certificate)
	return get, errors.Join(ck.errs...)
}

// resolve makes a relative path absolute against dir; "" stays "".
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// decodeObject parses a JSON object, allowing the // and /* */ comments of
// KMS 6 era config files, with numbers kept as json.Number.
func decodeObject(file string, data []byte) (map[string]any, error) {
	data = stripComments(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var root map[string]any
	err := dec.Decode(&root)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the top-level object")
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(data[:se.Offset], []byte("\n"))
			return nil, fmt.Errorf("%s:%d: %v", file, line, err)
		}
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if root == nil {
		return nil, fmt.Errorf("%s: top level must be a JSON object", file)
	}
	return root, nil
}

// stripComments blanks out comments outside strings, keeping byte offsets
// (and so line numbers in errors) unchanged.
func stripComments(data []byte) []byte {
	out := bytes.Clone(data)
	inString := false
	for i := 0; i < len(out); i++ {
		switch {
		case inString:
			if out[i] == '\\' {
				i++
			} else if out[i] == '"' {
				inString = false
			}
		case out[i] == '"':
			inString = true
		case out[i] == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		case out[i] == '/' && i+1 < len(out) && out[i+1] == '*':
			end := bytes.Index(out[i+2:], []byte("*/"))
			stop := len(out)
			if end >= 0 {
				stop = i + 2 + end + 2
			}
			for ; i < stop; i++ {
				if out[i] != '\n' {
					out[i] = ' '
				}
			}
			i--
		}
	}
	return out
}
