package rtp

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// Crypto is the SDES setting of an endpoint (Kurento's SDES register): a suite and the master key
// followed by the master salt.
type Crypto struct {
	Suite string // Kurento CryptoSuite name: "AES_128_CM_HMAC_SHA1_80", ...
	Key   []byte // key||salt, KeySize(Suite) bytes; nil: a random one is made at the first offer/answer
}

// suite ties a Kurento CryptoSuite name to its SDP name (RFC 4568, RFC 6188) and pion's profile.
type suite struct {
	kurento string
	sdp     string
	profile srtp.ProtectionProfile
	keyLen  int // master key bytes; the salt is always 14
}

const saltLen = 14

var suites = []suite{
	{"AES_128_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16},
	{"AES_128_CM_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32, 16},
	{"AES_256_CM_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes256CmHmacSha1_80, 32},
	{"AES_256_CM_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_32", srtp.ProtectionProfileAes256CmHmacSha1_32, 32},
}

func suiteByName(kurento string) (suite, bool) {
	for _, s := range suites {
		if s.kurento == kurento {
			return s, true
		}
	}
	return suite{}, false
}

func suiteBySDP(name string) (suite, bool) {
	for _, s := range suites {
		if strings.EqualFold(s.sdp, name) {
			return s, true
		}
	}
	return suite{}, false
}

// KeySize is the master key plus salt length a suite needs (30 or 46 bytes), 0 for unknown suites.
func KeySize(suiteName string) int {
	s, ok := suiteByName(suiteName)
	if !ok {
		return 0
	}
	return s.keyLen + saltLen
}

// sdesKey is one a=crypto line.
type sdesKey struct {
	tag   int
	suite suite
	key   []byte // key||salt
	mki   []byte // nil: no MKI in packets
}

func newKey(c *Crypto) (*sdesKey, error) {
	s, ok := suiteByName(c.Suite)
	if !ok {
		return nil, fmt.Errorf("unknown crypto suite %q", c.Suite)
	}
	key := c.Key
	if key == nil {
		key = make([]byte, s.keyLen+saltLen)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		c.Key = key
	}
	if len(key) != s.keyLen+saltLen {
		return nil, fmt.Errorf("master key of %s must be %d bytes, not %d", c.Suite, s.keyLen+saltLen, len(key))
	}
	return &sdesKey{tag: 1, suite: s, key: key}, nil
}

// attribute is the value of the a=crypto line.
func (k *sdesKey) attribute() string {
	return fmt.Sprintf("%d %s inline:%s", k.tag, k.suite.sdp, base64.StdEncoding.EncodeToString(k.key))
}

// parseCrypto reads "tag suite inline:key[|lifetime][|mki:len] ..." (RFC 4568 §9.1). Unknown suites
// are an error the caller may skip.
func parseCrypto(v string) (sdesKey, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return sdesKey{}, fmt.Errorf("crypto attribute %q: too few fields", v)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil {
		return sdesKey{}, fmt.Errorf("crypto attribute %q: bad tag", v)
	}
	s, ok := suiteBySDP(f[1])
	if !ok {
		return sdesKey{}, fmt.Errorf("crypto attribute %q: unsupported suite %s", v, f[1])
	}
	params, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return sdesKey{}, fmt.Errorf("crypto attribute %q: key method is not inline", v)
	}
	parts := strings.Split(params, "|")
	key, err := decodeBase64(parts[0])
	if err != nil || len(key) != s.keyLen+saltLen {
		return sdesKey{}, fmt.Errorf("crypto attribute %q: key must be %d bytes of base64", v, s.keyLen+saltLen)
	}
	k := sdesKey{tag: tag, suite: s, key: key}
	for _, p := range parts[1:] {
		value, length, isMKI := strings.Cut(p, ":")
		if !isMKI {
			continue // lifetime
		}
		n, err1 := strconv.ParseUint(value, 10, 64)
		size, err2 := strconv.Atoi(length)
		if err1 != nil || err2 != nil || size < 1 || size > 8 {
			return sdesKey{}, fmt.Errorf("crypto attribute %q: bad MKI", v)
		}
		k.mki = make([]byte, size)
		for i := size - 1; i >= 0; i-- {
			k.mki[i] = byte(n)
			n >>= 8
		}
	}
	return k, nil
}

// DecodeKey reads a base64 master key, padded or not.
func DecodeKey(s string) ([]byte, error) { return decodeBase64(s) }

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// context makes an SRTP context for this key.
func (k *sdesKey) context() (*srtp.Context, error) {
	var opts []srtp.ContextOption
	if len(k.mki) > 0 {
		opts = append(opts, srtp.MasterKeyIndicator(k.mki))
	}
	return srtp.CreateContext(k.key[:k.suite.keyLen], k.key[k.suite.keyLen:], k.suite.profile, opts...)
}
