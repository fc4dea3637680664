package webrtc

import (
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// interfacesMaxAge is how long endpoints share one list of the host's interfaces: a new address is
// offered by the endpoints negotiated that long after it appeared at the latest.
const interfacesMaxAge = 10 * time.Second

// hostNet is the network of the endpoints that need no network of their own (no DSCP, no TURN over
// TLS). Without it pion makes one per peer connection, each a netlink dump of every interface and
// address and a copy of the list kept for the connection's life: 7 KB and a few hundred
// microseconds per endpoint for the same answer.
var hostNet struct {
	sync.Mutex
	net transport.Net
	at  time.Time
}

// snapshotNet is a list of interfaces that never changes once made, as pion's goroutines read it
// without a lock; a newer one replaces it for the next endpoints. It is not a *stdnet.Net so that
// pion's continual gathering, were it ever turned on, cannot refresh it in place.
type snapshotNet struct{ transport.Net }

func sharedHostNet() (transport.Net, error) {
	hostNet.Lock()
	defer hostNet.Unlock()
	if hostNet.net != nil && time.Since(hostNet.at) < interfacesMaxAge {
		return hostNet.net, nil
	}
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	hostNet.net, hostNet.at = snapshotNet{n}, time.Now()
	return hostNet.net, nil
}
