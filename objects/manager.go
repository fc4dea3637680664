package objects

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kurento-go/kms/api"
)

// ServerManagerInfo is what the ServerManager reports about the process.
type ServerManagerInfo struct {
	// Metadata is the JSON text of the "metadata" key of kurento.conf.json ("" when absent).
	Metadata string
	// Started is when the server started; it stands for the modules' generation time.
	Started time.Time
}

// ServerManager is the server-wide singleton "manager_ServerManager".
type ServerManager struct {
	*Base
	info ServerManagerInfo
}

func managerOf(o Object) *ServerManager { return o.(*ServerManager) }

var serverManagerOps = map[string]Handler{
	"getInfo": func(o Object, _ Args) (any, error) {
		m := managerOf(o)
		s := m.reg.schema
		var modules []any
		for _, name := range s.ModuleNames() {
			modules = append(modules, &api.Register{Type: "ModuleInfo", Fields: map[string]any{
				"version":        api.Version,
				"name":           name,
				"generationTime": m.info.Started.UTC().Format("Jan 02 2006 15:04:05"),
				"factories":      s.Factories(name),
			}})
		}
		return &api.Register{Type: "ServerInfo", Fields: map[string]any{
			"version":      api.Version,
			"modules":      modules,
			"type":         "KMS",
			"capabilities": []string{"transactions"},
		}}, nil
	},
	"getPipelines": func(o Object, _ Args) (any, error) { return managerOf(o).reg.Pipelines(), nil },
	"getSessions":  func(o Object, _ Args) (any, error) { return managerOf(o).reg.Sessions(), nil },
	"getMetadata":  func(o Object, _ Args) (any, error) { return managerOf(o).info.Metadata, nil },
	"getKmd": func(o Object, a Args) (any, error) {
		return kmdText(managerOf(o).reg.schema, a.String("moduleName"))
	},
	"getCpuCount": func(Object, Args) (any, error) { return runtime.NumCPU(), nil },
	"getUsedCpu": func(_ Object, a Args) (any, error) {
		interval := time.Duration(a.Int("interval")) * time.Millisecond
		if interval <= 0 {
			interval = time.Second
		}
		return usedCPU(interval), nil
	},
	"getUsedMemory": func(Object, Args) (any, error) { return residentKiB(), nil },
}

// usedCPU measures the process's CPU use over interval, in percent of the cores it may run on.
func usedCPU(interval time.Duration) float64 {
	before, ok := processCPUTicks()
	start := time.Now()
	time.Sleep(interval)
	after, ok2 := processCPUTicks()
	if !ok || !ok2 {
		return 0
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	busy := float64(after-before) / ticksPerSecond
	return 100 * busy / time.Since(start).Seconds() / float64(runtime.NumCPU())
}

// processCPUTicks reads utime+stime of this process from /proc.
func processCPUTicks() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	return utime + stime, err1 == nil && err2 == nil
}

// residentKiB is the process's resident memory in KiB.
func residentKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
