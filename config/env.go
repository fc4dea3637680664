package config

import "fmt"

// kmsEnv maps the Docker image's KMS_* variables to the module settings its
// entrypoint writes them into.
var kmsEnv = []struct{ env, class, key string }{
	{"KMS_MIN_PORT", "BaseRtpEndpoint", "minPort"},
	{"KMS_MAX_PORT", "BaseRtpEndpoint", "maxPort"},
	{"KMS_MTU", "BaseRtpEndpoint", "mtu"},
	{"KMS_EXTERNAL_IPV4", "WebRtcEndpoint", "externalIPv4"},
	{"KMS_EXTERNAL_IPV6", "WebRtcEndpoint", "externalIPv6"},
	{"KMS_NETWORK_INTERFACES", "WebRtcEndpoint", "networkInterfaces"},
	{"KMS_ICE_TCP", "WebRtcEndpoint", "iceTcp"},
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
			// The entrypoint asks public DNS resolvers; we stay offline and
			// leave the setting as the files have it.
			*warnings = append(*warnings, e.env+"=auto is not supported, ignored")
			continue
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
