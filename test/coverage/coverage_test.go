// Package coverage writes docs/COVERAGE.md from what the server answers: every creatable class of
// api.json is created, every operation of its class chain called with plausible arguments and every
// event subscribed to. The committed table must match (KMS_UPDATE_COVERAGE=1 rewrites it), so it
// cannot drift from the server.
package coverage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/kurento-go/kms/kerr"
)

const tablePath = "../../docs/COVERAGE.md"

// differs lists, honestly, where an implemented operation or event is known to behave unlike KMS 7.3.
var differs = map[string]string{
	"RecorderEndpoint.constructor":  "KURENTO_SPLIT_RECORDER answers an error (KMS: only when its plugin is missing)",
	"MediaElement.getGstreamerDot":  "GStreamer parts are real; pure-Go parts (WebRTC, RTP, recorder) are drawn nodes",
	"MediaPipeline.getGstreamerDot": "GStreamer parts are real; pure-Go parts (WebRTC, RTP, recorder) are drawn nodes",
	"ServerManager.getKmd":          "generated from api.json: same members and structure, our own documentation text",
}

// ctorOverrides are constructor arguments a class needs to be created at all.
func ctorOverrides(objs map[string]string) map[string]map[string]any {
	return map[string]map[string]any{
		"GStreamerFilter":  {"command": "videoflip"},
		"PlayerEndpoint":   {"uri": "file:///nonexistent/coverage.webm"},
		"RecorderEndpoint": {"uri": "file:///tmp/kms-coverage.webm"},
		"VideoSampler":     {"framePeriod": 1000},
		"HubPort":          {"hub": objs["Dispatcher"]},
	}
}

// sample is a plausible value of an API type: objects from the pool, first enum values, registers
// with their fields filled in.
func sample(s *api.Schema, typ string, objs map[string]string, depth int) any {
	if strings.HasSuffix(typ, "[]") {
		return []any{}
	}
	if strings.HasSuffix(typ, "<>") {
		return map[string]any{}
	}
	switch typ {
	case "String":
		return "coverage"
	case "int", "int64":
		return 1
	case "float", "double":
		return 1.0
	case "boolean":
		return false
	}
	if c, ok := s.Classes[typ]; ok {
		for _, name := range sortedKeys(objs) {
			if oc, ok := s.Classes[name]; ok && oc.Is(c.Name) {
				return objs[name]
			}
		}
		return objs["MediaPipeline"]
	}
	if t, ok := s.ComplexTypes[typ]; ok {
		if t.Kind == "enum" {
			return t.Values[0]
		}
		out := map[string]any{"__type__": t.Name, "__module__": api.ModuleOf(t.Module)}
		for k := t; k != nil && depth < 3; k = k.Extends {
			for _, f := range k.Fields {
				out[f.Name] = sample(s, f.Type, objs, depth+1)
			}
		}
		return out
	}
	return nil
}

type row struct{ class, member, kind, status string }

func TestCoverageTable(t *testing.T) {
	s := api.MustLoad()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, testserver.Start(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pipeline, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]string{"MediaPipeline": pipeline, "ServerManager": "manager_ServerManager"}
	if objs["Dispatcher"], err = c.Create(ctx, "Dispatcher", map[string]any{"mediaPipeline": pipeline}); err != nil {
		t.Fatal(err)
	}

	var classes []string
	for _, mod := range s.ModuleNames() {
		classes = append(classes, s.Factories(mod)...)
	}
	sort.Strings(classes)
	classes = append([]string{"ServerManager"}, classes...)
	var rows []row
	over := ctorOverrides(objs)
	for _, name := range classes {
		cls := s.Classes[name]
		id := objs[name]
		if id == "" {
			params := map[string]any{}
			if cls.Constructor != nil {
				for _, p := range cls.Constructor.Params {
					if !p.Optional {
						params[p.Name] = sample(s, p.Type, objs, 0)
					}
				}
			}
			for k, v := range over[name] {
				params[k] = v
			}
			id, err = c.Create(ctx, name, params)
			if err != nil {
				rows = append(rows, row{name, "constructor", "create", status(name+".constructor", err)})
				continue
			}
			objs[name] = id
		}
		rows = append(rows, row{name, "constructor", "create", status(name+".constructor", nil)})
		seen := map[string]bool{}
		for k := cls; k != nil; k = k.Extends {
			var ops []row
			for _, m := range k.Methods {
				ops = append(ops, row{k.Name, m.Name, "method", ""})
			}
			for _, p := range k.Properties {
				if p.Getter != "" {
					ops = append(ops, row{k.Name, p.Getter, "getter", ""})
				}
				if p.Setter != "" {
					ops = append(ops, row{k.Name, p.Setter, "setter", ""})
				}
			}
			for _, op := range ops {
				if seen[op.member] || op.member == "release" {
					continue
				}
				seen[op.member] = true
				m, _ := cls.Operation(op.member)
				params := map[string]any{}
				for _, p := range m.Params {
					params[p.Name] = sample(s, p.Type, objs, 0)
				}
				callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.Invoke(callCtx, id, op.member, params, nil)
				cancel()
				rows = append(rows, row{name, op.member + " (" + op.kind + ", from " + k.Name + ")", op.kind, status(k.Name+"."+op.member, err)})
			}
		}
		for _, ev := range cls.AllEvents {
			err := c.Subscribe(ctx, id, ev, func(client.Event) {})
			rows = append(rows, row{name, ev, "event", status(eventOwner(s, cls, ev)+"."+ev, err)})
		}
	}

	var b strings.Builder
	b.WriteString("# Remote API coverage\n\nGenerated by `test/coverage` (`KMS_UPDATE_COVERAGE=1 go test ./test/coverage` rewrites it) from\n" +
		"api.json and the server's own answers: each creatable class is created, each operation of its class chain\n" +
		"called with plausible arguments and each event subscribed to. **implemented**: answered (a refusal of the\n" +
		"arguments counts: the operation exists); **differs**: implemented, with a known difference from KMS 7.3;\n" +
		"**missing**: answered 40006 (not implemented) or no answer.\n\n")
	counts := map[string]int{}
	for _, r := range rows {
		counts[strings.TrimSuffix(strings.Fields(r.status)[0], ":")]++
	}
	fmt.Fprintf(&b, "Totals: %d implemented, %d differs, %d missing.\n", counts["implemented"], counts["differs"], counts["missing"])
	cur := ""
	for _, r := range rows {
		if r.class != cur {
			cur = r.class
			fmt.Fprintf(&b, "\n## %s\n\n| member | kind | status |\n|---|---|---|\n", cur)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.member, r.kind, r.status)
	}
	got := b.String()
	if os.Getenv("KMS_UPDATE_COVERAGE") != "" {
		if err := os.WriteFile(tablePath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(tablePath)
	if err != nil || string(want) != got {
		t.Errorf("docs/COVERAGE.md is not what the server answers now; rerun with KMS_UPDATE_COVERAGE=1 and commit it")
	}
	if counts["missing"] > 0 {
		t.Errorf("%d members missing", counts["missing"])
	}
}

// status says how an answer counts.
func status(key string, err error) string {
	var ke *client.Error
	switch {
	case errors.As(err, &ke) && ke.Code == kerr.NotImplemented:
		return "missing (40006)"
	case err != nil && !errors.As(err, &ke):
		return "missing (no answer)"
	case differs[key] != "":
		return "differs: " + differs[key]
	}
	return "implemented"
}

// eventOwner is the class of c's chain that declares ev, for the differs list.
func eventOwner(s *api.Schema, c *api.Class, ev string) string {
	owner := c.Name
	for k := c; k != nil; k = k.Extends {
		if k.HasEvent(ev) {
			owner = k.Name
		}
	}
	return owner
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
