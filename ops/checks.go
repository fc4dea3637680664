package ops

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Responds is a check that fails when poke does not return: poke takes the lock of an event loop
// (the object registry, the WebSocket server), so a deadlock shows as a failed probe (runChecks bounds
// the wait).
func Responds(poke func()) Check {
	return func() error {
		poke()
		return nil
	}
}

// FreeUDPPort is a check that the media port range [min, max] still has a free UDP port: it binds one
// of a few ports picked at random, and releases it at once.
func FreeUDPPort(min, max int) Check {
	return func() error {
		if min <= 0 || max < min {
			return nil // the whole ephemeral range: the kernel finds one
		}
		for range 16 {
			port := min + rand.IntN(max-min+1)
			c, err := net.ListenPacket("udp", net.JoinHostPort("", strconv.Itoa(port)))
			if err == nil {
				c.Close()
				return nil
			}
		}
		return fmt.Errorf("no free UDP port found in %d-%d", min, max)
	}
}

// Bool is a check that fails with msg while bad returns true.
func Bool(bad func() bool, msg string) Check {
	return func() error {
		if bad() {
			return errors.New(msg)
		}
		return nil
	}
}
