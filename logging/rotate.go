package logging

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"
)

// logName matches the files RotatingFile writes, of any process.
var logName = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d{6}\.\d{5,}\.pid\d+\.log$`)

// RotatingFile is the -d/--logs-path output: files named
// {ISO-date}.{n}.pid{PID}.log in one directory, a new one started before a
// write would push the current file past maxSize, and only the newest keep
// files (earlier runs' included) left on disk. Each Write goes whole into one
// file, so lines are never split.
type RotatingFile struct {
	mu      sync.Mutex
	dir     string
	maxSize int64
	keep    int
	n       int
	f       *os.File
	size    int64
}

// OpenRotatingFile creates dir if needed and opens the first file.
func OpenRotatingFile(dir string, maxSize int64, keep int) (*RotatingFile, error) {
	if maxSize <= 0 || keep <= 0 {
		return nil, fmt.Errorf("logging: bad rotation limits: size %d, files %d", maxSize, keep)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &RotatingFile{dir: dir, maxSize: maxSize, keep: keep}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.f.Close(); err != nil {
			return 0, err
		}
		r.n++
		if err := r.open(); err != nil {
			r.f = nil
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// Close closes the current file; later writes fail.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

func (r *RotatingFile) open() error {
	name := fmt.Sprintf("%s.%05d.pid%d.log", time.Now().Format("2006-01-02T150405"), r.n, os.Getpid())
	f, err := os.OpenFile(filepath.Join(r.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	r.f, r.size = f, 0
	r.prune()
	return nil
}

// prune removes the oldest log files beyond keep. Names start with the
// date, so name order is age order. Failures are ignored: a file we cannot
// delete must not stop logging, and there is nowhere else to report it.
func (r *RotatingFile) prune() {
	entries, _ := os.ReadDir(r.dir)
	var logs []string
	for _, e := range entries {
		if e.Type().IsRegular() && logName.MatchString(e.Name()) {
			logs = append(logs, e.Name())
		}
	}
	sort.Strings(logs)
	for _, old := range logs[:max(0, len(logs)-r.keep)] {
		os.Remove(filepath.Join(r.dir, old))
	}
}
