// Package kubernetes holds the Kustomize base of a cluster (docs/CLUSTER.md). No Kubernetes runs
// here, so the test decodes every manifest strictly into the API types (an unknown or misplaced
// field fails) and checks what a wrong manifest would break: Services that select no pod, probes on
// ports that do not exist, and KMS_* settings the server itself refuses (through config.Load).
package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kurento-go/kms/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name   string `json:"name"`
		NewTag string `json:"newTag"`
	} `json:"images"`
}

// manifests are the decoded objects of the base.
type manifests struct {
	namespaces []corev1.Namespace
	configMaps []corev1.ConfigMap
	services   []corev1.Service
	workloads  map[string]*corev1.PodTemplateSpec // Deployment or DaemonSet name -> pod template
	selectors  map[string]map[string]string       // same name -> selector labels
	daemonSets []appsv1.DaemonSet
}

func decode(t *testing.T) (kustomization, manifests) {
	var k kustomization
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		if f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
	m := manifests{workloads: map[string]*corev1.PodTemplateSpec{}, selectors: map[string]map[string]string{}}
	for _, f := range k.Resources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("resource %s: %v", f, err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			if err := m.add(doc); err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
	return k, m
}

func (m *manifests) add(doc []byte) error {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	switch head.Kind {
	case "Namespace":
		var o corev1.Namespace
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.namespaces = append(m.namespaces, o)
	case "ConfigMap":
		var o corev1.ConfigMap
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.configMaps = append(m.configMaps, o)
	case "Service":
		var o corev1.Service
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.services = append(m.services, o)
	case "Deployment":
		var o appsv1.Deployment
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.workloads[o.Name], m.selectors[o.Name] = &o.Spec.Template, o.Spec.Selector.MatchLabels
	case "DaemonSet":
		var o appsv1.DaemonSet
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.workloads[o.Name], m.selectors[o.Name] = &o.Spec.Template, o.Spec.Selector.MatchLabels
		m.daemonSets = append(m.daemonSets, o)
	default:
		return fmt.Errorf("unexpected kind %q", head.Kind)
	}
	return nil
}

func TestManifestsDecodeStrictly(t *testing.T) {
	k, m := decode(t)
	if k.Kind != "Kustomization" || len(m.namespaces) != 1 || m.namespaces[0].Name != k.Namespace {
		t.Errorf("kustomization %s in namespace %q, namespaces %v", k.Kind, k.Namespace, m.namespaces)
	}
	for name, tmpl := range m.workloads {
		for key, v := range m.selectors[name] {
			if tmpl.Labels[key] != v {
				t.Errorf("%s: selector %s=%s does not match its pod labels %v", name, key, v, tmpl.Labels)
			}
		}
	}
}

func TestServicesReachPods(t *testing.T) {
	_, m := decode(t)
	for _, s := range m.services {
		var pods []*corev1.PodTemplateSpec
		for _, tmpl := range m.workloads {
			if matches(s.Spec.Selector, tmpl.Labels) {
				pods = append(pods, tmpl)
			}
		}
		if len(pods) == 0 {
			t.Errorf("Service %s selects no pod (%v)", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			if name := p.TargetPort.StrVal; name != "" && port(pods[0], name) == 0 {
				t.Errorf("Service %s targets port %q, which its pods do not name", s.Name, name)
			}
		}
	}
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

func port(p *corev1.PodTemplateSpec, name string) int32 {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

// envRef is a $(VAR) reference in an env value, which Kubernetes expands from earlier variables.
var envRef = regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_]*\)`)

// TestServerAcceptsTheSettings runs the server's own configuration loader on each container's
// arguments, environment and mounted kurento.conf.json, as the pod would start it.
func TestServerAcceptsTheSettings(t *testing.T) {
	k, m := decode(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "kurento.conf.json")
	if len(m.configMaps) != 1 {
		t.Fatalf("%d ConfigMaps, want the one with kurento.conf.json", len(m.configMaps))
	}
	os.WriteFile(conf, []byte(m.configMaps[0].Data["kurento.conf.json"]), 0o644)
	services := map[string]bool{}
	for _, s := range m.services {
		services[s.Name] = true
		services[s.Name+"."+k.Namespace+".svc.cluster.local"] = true
	}
	const hostIP = "192.0.2.10"
	routers, nodes := 0, 0
	for name, tmpl := range m.workloads {
		c := tmpl.Spec.Containers[0]
		if c.Image != "kurento-go" {
			continue
		}
		env := map[string]string{"HOST_IP": hostIP}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env[e.Name] = envRef.ReplaceAllStringFunc(e.Value, func(ref string) string { return env[ref[2:len(ref)-1]] })
			}
		}
		args := slices.Clone(c.Args)
		for i, a := range args {
			if a == "/etc/kurento/kurento.conf.json" {
				args[i] = conf
			}
		}
		cfg, err := config.Load(args, func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s: the server refuses its settings: %v", name, err)
			continue
		}
		if host := strings.Split(strings.TrimPrefix(cfg.Cluster.Store, "redis://"), ":")[0]; !services[host] {
			t.Errorf("%s: cluster store host %q is no Service of the base", name, host)
		}
		if _, p, _ := strings.Cut(cfg.Observe.MetricsAddress, ":"); c.ReadinessProbe == nil ||
			c.ReadinessProbe.HTTPGet.Path != "/readyz" || fmt.Sprint(port(tmpl, c.ReadinessProbe.HTTPGet.Port.StrVal)) != p {
			t.Errorf("%s: readiness must be /readyz on the metrics listener (%s)", name, cfg.Observe.MetricsAddress)
		}
		if cfg.WebSocket.Port != int(port(tmpl, "kurento")) {
			t.Errorf("%s: kurento.conf.json listens on %d, the pod names port %d", name, cfg.WebSocket.Port, port(tmpl, "kurento"))
		}
		if cfg.Cluster.Router {
			routers++
			continue
		}
		nodes++
		if !tmpl.Spec.HostNetwork || tmpl.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("%s: media nodes need hostNetwork (their RTP ports) and ClusterFirstWithHostNet DNS", name)
		}
		if want := "ws://" + hostIP + ":8888/kurento"; cfg.Cluster.Advertise != want {
			t.Errorf("%s: advertises %q, want the host's address %q", name, cfg.Cluster.Advertise, want)
		}
		rtp := cfg.Modules.BaseRtpEndpoint
		if rtp.MaxPort-rtp.MinPort < 100 {
			t.Errorf("%s: port range %d-%d too small for a node", name, rtp.MinPort, rtp.MaxPort)
		}
	}
	if routers == 0 || nodes == 0 {
		t.Errorf("%d router and %d node workloads, want both", routers, nodes)
	}
}
