package config

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/kurento-go/kms/publicip"
)

// testResolverEnv names the DNS server (host:port) asked instead of the public providers'
// for KMS_EXTERNAL_IPV4/6=auto. For tests only: they must not query the Internet.
const testResolverEnv = "KMS_TEST_PUBLIC_IP_RESOLVER"

// discoverPublicIP is the image's getmyip.sh: the providers in turn, a second each, three at most.
func discoverPublicIP(v6 bool, server string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return publicip.Discover(ctx, v6, server, time.Second)
}

// kmsEnv maps the Docker image's KMS_* variables to the module settings its
// entrypoint writes them into.
var kmsEnv = []struct{ env, class, key string }{
	{"KMS_MAX_VIDEO_RESOLUTION", "MediaElement", "maxVideoResolution"},
	{"KMS_MIN_PORT", "BaseRtpEndpoint", "minPort"},
	{"KMS_MAX_PORT", "BaseRtpEndpoint", "maxPort"},
	{"KMS_MTU", "BaseRtpEndpoint", "mtu"},
	{"KMS_EXTERNAL_IPV4", "WebRtcEndpoint", "externalIPv4"},
	{"KMS_EXTERNAL_IPV6", "WebRtcEndpoint", "externalIPv6"},
	{"KMS_NETWORK_INTERFACES", "WebRtcEndpoint", "networkInterfaces"},
	{"KMS_ICE_TCP", "WebRtcEndpoint", "iceTcp"},
	{"KMS_WEBRTC_UDP_MUX", "WebRtcEndpoint", "udpMux"},
	{"KMS_WEBRTC_DIRECT_SRTP", "WebRtcEndpoint", "directSrtp"},
	{"KMS_TURN_URL", "WebRtcEndpoint", "turnURL"},
	{"KMS_PEM_CERTIFICATE_RSA", "WebRtcEndpoint", "pemCertificateRSA"},
	{"KMS_PEM_CERTIFICATE_ECDSA", "WebRtcEndpoint", "pemCertificateECDSA"},
}

// applyKMSEnv overrides module settings with non-empty KMS_* variables. The
// values are validated with the file values, so errors name the variable.
// Relative paths resolve against confDir.
func applyKMSEnv(set moduleSet, getenv func(string) string, confDir string, warnings *[]string) {
	for _, e := range kmsEnv {
		v := getenv(e.env)
		if v == "" {
			continue
		}
		if v == "auto" && (e.env == "KMS_EXTERNAL_IPV4" || e.env == "KMS_EXTERNAL_IPV6") {
			ip, err := discoverPublicIP(e.env == "KMS_EXTERNAL_IPV6", getenv(testResolverEnv))
			if err != nil {
				// As the image's entrypoint: the setting stays as the files have it.
				*warnings = append(*warnings, fmt.Sprintf("%s=auto: no public address discovered, left unset: %v", e.env, err))
				continue
			}
			v = ip.String()
		}
		set.set("kurento."+e.class, e.key, setting{v: v, src: e.env, dir: confDir})
	}
	ip, port := getenv("KMS_STUN_IP"), getenv("KMS_STUN_PORT")
	switch {
	case ip != "" && port != "":
		set.set("kurento.WebRtcEndpoint", "stunServerAddress", setting{v: ip, src: "KMS_STUN_IP"})
		set.set("kurento.WebRtcEndpoint", "stunServerPort", setting{v: port, src: "KMS_STUN_PORT"})
	case ip != "" || port != "":
		*warnings = append(*warnings, fmt.Sprintf("KMS_STUN_IP and KMS_STUN_PORT must both be set, ignored (ip=%q port=%q)", ip, port))
	}
}
