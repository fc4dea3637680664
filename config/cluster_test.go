package config

import (
	"strings"
	"testing"
)

func TestClusterOptions(t *testing.T) {
	c, err := load(t, "", nil, map[string]string{"KMS_CLUSTER_STORE": "redis://r:6379/2", "KMS_ROUTER": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Cluster{Store: "redis://r:6379/2", Router: true}); c.Cluster != want {
		t.Errorf("from the environment: %+v, want %+v", c.Cluster, want)
	}
	c, err = load(t, "", nil, map[string]string{"KMS_CLUSTER_STORE": "redis://env:1"},
		"--cluster-store", "redis://flag:6379", "--cluster-advertise=ws://10.0.0.5:8888/kurento")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Cluster{Store: "redis://flag:6379", Advertise: "ws://10.0.0.5:8888/kurento"}); c.Cluster != want {
		t.Errorf("flags over environment: %+v, want %+v", c.Cluster, want)
	}
	if c, _ := load(t, "", nil, nil); c.Cluster != (Cluster{}) {
		t.Errorf("no options: %+v, want a single server", c.Cluster)
	}
	for _, bad := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--router"}, "--router needs --cluster-store"},
		{map[string]string{"KMS_CLUSTER_STORE": "etcd://x:2379"}, nil, "KMS_CLUSTER_STORE: must be redis://"},
		{nil, []string{"--cluster-store", "redis://r:1", "--cluster-advertise", "http://x/"}, "--cluster-advertise: must be ws://"},
		{map[string]string{"KMS_CLUSTER_STORE": "redis://r:1", "KMS_ROUTER": "yes please"}, nil, "KMS_ROUTER: must be true or false"},
	} {
		_, err := load(t, "", nil, bad.env, bad.args...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %v: error %v, want %q", bad.env, bad.args, err, bad.want)
		}
	}
}
