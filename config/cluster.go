package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Cluster is the cluster mode (docs/CLUSTER.md). Without a store the server runs alone, as KMS.
type Cluster struct {
	// Store is the cluster store URL, redis://HOST:PORT[/DB] (--cluster-store, KMS_CLUSTER_STORE).
	Store string
	// Advertise is the Kurento URI at which routers reach this node (--cluster-advertise,
	// KMS_CLUSTER_ADVERTISE); "" = the server's own WebSocket address.
	Advertise string
	// Router makes the process a router of the cluster instead of a media node (--router,
	// KMS_ROUTER=true).
	Router bool
}

// cluster reads the cluster options: the command line first, then the KMS_* variables.
func (f *flags) cluster(getenv func(string) string) (Cluster, error) {
	value := func(long, env string) (string, string) {
		if v, ok := f.values[long]; ok {
			return v, f.source[long]
		}
		return getenv(env), env
	}
	var c Cluster
	var src string
	c.Store, src = value("cluster-store", "KMS_CLUSTER_STORE")
	if c.Store != "" {
		u, err := url.Parse(c.Store)
		if err != nil || u.Scheme != "redis" || u.Host == "" {
			return c, fmt.Errorf("%s: must be redis://HOST:PORT[/DB], got %q", src, c.Store)
		}
	}
	c.Advertise, src = value("cluster-advertise", "KMS_CLUSTER_ADVERTISE")
	if c.Advertise != "" {
		u, err := url.Parse(c.Advertise)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return c, fmt.Errorf("%s: must be ws://HOST:PORT/PATH, got %q", src, c.Advertise)
		}
	}
	c.Router = f.switches["router"]
	if v := getenv("KMS_ROUTER"); v != "" && !c.Router {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return c, fmt.Errorf("KMS_ROUTER: must be true or false, got %q", v)
		}
		c.Router = b
	}
	if c.Router && c.Store == "" {
		return c, fmt.Errorf("--router needs --cluster-store (or KMS_CLUSTER_STORE)")
	}
	return c, nil
}
