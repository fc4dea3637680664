package gst

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/gst/workerconf"
)

// limits of one worker.
type limits struct {
	memory int64   // bytes; 0 = none
	cpu    float64 // cores; 0 = none
}

func limitsOf(s workerconf.Settings) limits { return limits{memory: s.MemoryLimit, cpu: s.CPULimit} }

// cpuGrace is how many consecutive seconds a worker may stay above its CPU limit.
var cpuGrace = 10

// watchPeriod is how often the supervisor samples a worker's memory and CPU.
var watchPeriod = time.Second

var (
	pageSize = int64(os.Getpagesize())
	clockHz  = 100.0 // USER_HZ, the unit of /proc/PID/stat times on Linux
)

// watch samples the worker's RSS and CPU time and kills it above a limit; the returned function
// ends the sampling.
func (w *worker) watch() func() {
	if w.limits.memory <= 0 && w.limits.cpu <= 0 {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(watchPeriod)
		defer t.Stop()
		lastCPU, lastAt, over := cpuTicks(w.pid), time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if w.limits.memory > 0 {
				if rss := rssBytes(w.pid); rss > w.limits.memory {
					w.kill(fmt.Sprintf("memory limit %s exceeded (resident %s)", sizeText(w.limits.memory), sizeText(rss)))
					return
				}
			}
			if w.limits.cpu > 0 {
				ticks, now := cpuTicks(w.pid), time.Now()
				cores := float64(ticks-lastCPU) / clockHz / now.Sub(lastAt).Seconds()
				lastCPU, lastAt = ticks, now
				if cores > w.limits.cpu {
					over++
				} else {
					over = 0
				}
				if over >= cpuGrace {
					w.kill(fmt.Sprintf("CPU limit %s cores exceeded for %d s (%.2f cores)",
						strconv.FormatFloat(w.limits.cpu, 'f', -1, 64), over, cores))
					return
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// rssBytes reads the resident set size of a process (0 when it is gone).
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n * pageSize
}

// cpuTicks reads utime+stime of a process, in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(string(f[11]), 10, 64)
	s, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return u + s
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func limitLabel(why string) string {
	switch {
	case bytes.HasPrefix([]byte(why), []byte("memory")):
		return "memory_limit"
	case bytes.HasPrefix([]byte(why), []byte("CPU")):
		return "cpu_limit"
	}
	return "unresponsive"
}

// Live workers, crash counters and spawn figures.
var (
	liveMu    sync.Mutex
	live      = map[*worker]struct{}{}
	crashMu   sync.Mutex
	crashes   = map[string]uint64{}
	spawnTime atomic.Int64
)

func register(w *worker) {
	liveMu.Lock()
	live[w] = struct{}{}
	liveMu.Unlock()
}

func unregister(w *worker) {
	liveMu.Lock()
	delete(live, w)
	liveMu.Unlock()
}

func countCrash(reason string) {
	crashMu.Lock()
	crashes[reason]++
	crashMu.Unlock()
}

// Workers is the number of live worker processes (the utility worker included).
func Workers() int {
	liveMu.Lock()
	defer liveMu.Unlock()
	return len(live)
}

// WorkerPIDs lists the process ids of the live workers.
func WorkerPIDs() []int {
	liveMu.Lock()
	defer liveMu.Unlock()
	pids := make([]int, 0, len(live))
	for w := range live {
		pids = append(pids, w.pid)
	}
	return pids
}

// WorkerCrashes counts the workers that died, by reason: "signal", "exit", "memory_limit",
// "cpu_limit", "unresponsive".
func WorkerCrashes() map[string]uint64 {
	crashMu.Lock()
	defer crashMu.Unlock()
	out := make(map[string]uint64, len(crashes))
	for k, v := range crashes {
		out[k] = v
	}
	return out
}

// LastSpawnTime is how long the latest worker took from exec to ready.
func LastSpawnTime() time.Duration { return time.Duration(spawnTime.Load()) }

// Placement: the utility worker, the pool, or a worker per pipeline.
var (
	utilMu sync.Mutex
	util   *worker
	poolMu sync.Mutex
	pool   []*worker
)

// utility returns the shared worker for questions asked before a pipeline exists, starting it (again)
// when needed.
func utility() (*worker, error) {
	utilMu.Lock()
	defer utilMu.Unlock()
	if util != nil && !util.isGone() {
		return util, nil
	}
	w, err := spawn(limitsOf(settings()))
	if err != nil {
		return nil, err
	}
	util = w
	return w, nil
}

// utilityCall asks the utility worker, once more with a new one if it died meanwhile.
func utilityCall(r request) (reply, error) {
	for attempt := 0; ; attempt++ {
		w, err := utility()
		if err != nil {
			return reply{}, err
		}
		rep, err := w.call(r)
		if err != nil && w.isGone() && attempt == 0 {
			continue
		}
		return rep, err
	}
}

func (w *worker) isGone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone
}

func (w *worker) load() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pipes)
}

// place picks the worker of a new pipeline; exclusive tells that it serves this pipeline only.
func place() (w *worker, exclusive bool, err error) {
	s := settings()
	if s.Mode != workerconf.Pool {
		w, err = spawn(limitsOf(s))
		return w, true, err
	}
	poolMu.Lock()
	defer poolMu.Unlock()
	if len(pool) != s.PoolSize {
		pool = make([]*worker, s.PoolSize)
	}
	best := -1
	for i, w := range pool {
		if w == nil || w.isGone() {
			if best < 0 || pool[best] != nil {
				best = i
			}
			continue
		}
		if best < 0 || (pool[best] != nil && w.load() < pool[best].load()) {
			best = i
		}
	}
	if pool[best] == nil || pool[best].isGone() {
		if pool[best], err = spawn(limitsOf(s)); err != nil {
			pool[best] = nil
			return nil, false, err
		}
	}
	return pool[best], false, nil
}
