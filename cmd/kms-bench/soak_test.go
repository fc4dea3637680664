package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSoakShort runs `make soak` for 45 s (bench/run.sh --soak: our server and the 50 sessions in
// two network namespaces, 5 % loss, 30 ms jitter and reordering both ways, viewers joining and
// leaving) and checks what users and operators would notice.
func TestSoakShort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the soak needs root for network namespaces")
	}
	for _, c := range []string{"ip", "taskset"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("the soak needs %s", c)
		}
	}
	// Root inside a container may still lack the right to make namespaces.
	probe := fmt.Sprintf("soakprobe%d", os.Getpid())
	if err := exec.Command("ip", "netns", "add", probe).Run(); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	exec.Command("ip", "netns", "del", probe).Run()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../../bench/run.sh", "--soak", "--", "-soak-sample", "5s", "-out", out)
	cmd.Env = append(os.Environ(), "SOAK_DURATION=45s")
	log, err := cmd.CombinedOutput()
	t.Logf("\n%s", log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "soak.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res SoakResults
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Sessions != 50 || len(res.Samples) < 6 {
		t.Errorf("%d sessions, %d samples: want 50 sessions sampled every 5 s", s.Sessions, len(res.Samples))
	}
	// The link really was lossy: audio, which nobody repairs, lost about 10 % (5 % each way).
	if s.AudioLossPct < 5 {
		t.Errorf("audio loss %.2f %%: the link was not impaired", s.AudioLossPct)
	}
	// Yet the video plays: NACKs recover nearly every packet, so nearly every frame is decodable.
	if s.DeliveredPct < 90 || s.ResidualPct > 1 {
		t.Errorf("frames delivered %.2f %% (want ≥ 90), video loss after NACK %.3f %% (want ≤ 1)", s.DeliveredPct, s.ResidualPct)
	}
	if s.Joins < 10 || s.SetupErrors > 0 || s.JoinNoMedia > 0 {
		t.Errorf("joins %d (want ≥ 10), failed %d, without video %d", s.Joins, s.SetupErrors, s.JoinNoMedia)
	}
	// Memory levels off after warm-up, and releasing every session gives the descriptors back.
	if s.RSSEndMB > 1.5*s.RSSSteadyMB {
		t.Errorf("server RSS grew from %.0f MB after warm-up to %.0f MB", s.RSSSteadyMB, s.RSSEndMB)
	}
	if s.FDsAfter > s.FDsBefore+4 {
		t.Errorf("server descriptors: %d before, %d after every session was released", s.FDsBefore, s.FDsAfter)
	}
	if st, err := os.Stat(filepath.Join(out, "soak.png")); err != nil || st.Size() == 0 {
		t.Errorf("chart not written: %v", err)
	}
}
