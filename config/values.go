package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// setting is one raw value and where it came from, so that errors can name
// the file (or environment variable) an operator has to fix.
type setting struct {
	// v is a string (ini files, environment) or a decoded JSON value
	// (json.Number, bool, string, []any, map[string]any).
	v   any
	src string // file path or environment variable name
	dir string // base for relative paths
}

type lookup func(key string) (setting, bool)

// checker collects every validation error so that one run shows them all.
type checker struct{ errs []error }

func (c *checker) bad(s setting, key, want string) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s: must be %s, got %s", s.src, key, want, show(s.v)))
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// The as* conversions accept JSON values and their text forms alike: KMS
// keeps every value as a string in a boost property tree, so "8888" and
// 8888 are the same port there and must be here.

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func asInt(v any) (int, bool) {
	s, ok := asString(v)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}

func asFloat(v any) (float64, bool) {
	s, ok := asString(v)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func asBool(v any) (bool, bool) {
	s, ok := asString(v)
	if !ok {
		return false, false
	}
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// intRange stores key into dst when present and within lo..hi.
func (c *checker) intRange(get lookup, key string, lo, hi int, dst *int) {
	s, ok := get(key)
	if !ok {
		return
	}
	if n, ok := asInt(s.v); ok && n >= lo && n <= hi {
		*dst = n
		return
	}
	if hi == math.MaxInt32 {
		c.bad(s, key, fmt.Sprintf("an integer >= %d", lo))
	} else {
		c.bad(s, key, fmt.Sprintf("an integer %d..%d", lo, hi))
	}
}

// intMin is intRange up to the 32-bit limit KMS's int settings have.
func (c *checker) intMin(get lookup, key string, lo int, dst *int) {
	c.intRange(get, key, lo, math.MaxInt32, dst)
}

// fraction stores a number in (0,1].
func (c *checker) fraction(get lookup, key string, dst *float64) {
	s, ok := get(key)
	if !ok {
		return
	}
	if f, ok := asFloat(s.v); ok && f > 0 && f <= 1 {
		*dst = f
		return
	}
	c.bad(s, key, "a number in (0,1]")
}

func (c *checker) boolean(get lookup, key string, dst *bool) {
	s, ok := get(key)
	if !ok {
		return
	}
	if b, ok := asBool(s.v); ok {
		*dst = b
		return
	}
	c.bad(s, key, "true or false")
}

func (c *checker) str(get lookup, key string, dst *string) {
	s, ok := get(key)
	if !ok {
		return
	}
	if v, ok := asString(s.v); ok {
		*dst = v
		return
	}
	c.bad(s, key, "a string")
}

// oneOf stores a string that must be one of allowed.
func (c *checker) oneOf(get lookup, key string, allowed []string, dst *string) {
	s, ok := get(key)
	if !ok {
		return
	}
	if v, ok := asString(s.v); ok {
		for _, a := range allowed {
			if v == a {
				*dst = v
				return
			}
		}
	}
	c.bad(s, key, "one of "+strings.Join(allowed, ", "))
}
