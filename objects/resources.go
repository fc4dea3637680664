package objects

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/kurento-go/kms/kerr"
)

// SetExceptionLimit sets mediaServer.resources.exceptionLimit: the fraction of the process's thread
// and open-file limits above which create fails with 40009 NOT_ENOUGH_RESOURCES. Zero disables the
// check. Call it before serving requests.
func (r *Registry) SetExceptionLimit(fraction float64) { r.exceptionLimit = fraction }

// SetOnEmpty sets a function called (without locks held) each time a release leaves no object but the
// ServerManager; the server uses it for mediaServer.resources.killLimit. Call it before serving.
func (r *Registry) SetOnEmpty(f func()) { r.onEmpty = f }

func (r *Registry) checkResources() error { return CheckResources(r.exceptionLimit) }

// CheckResources is KMS's check before every create: the thread count (from /proc/self/stat) against
// RLIMIT_NPROC and the open descriptors (entries of /proc/self/fd) against RLIMIT_NOFILE, each scaled
// by fraction, failing with 40009 NOT_ENOUGH_RESOURCES. Unlimited or unreadable values pass, and so
// does everything when fraction is 0.
func CheckResources(fraction float64) error {
	if fraction <= 0 {
		return nil
	}
	if max := rlimit(rlimitNPROC); max > 0 {
		limit := uint64(float64(max) * fraction)
		if n, ok := threadCount(); ok && n > limit {
			return kerr.New(kerr.NotEnoughResources, "Reached KMS threads limit: %d", limit)
		}
	}
	if max := rlimit(syscall.RLIMIT_NOFILE); max > 0 {
		limit := uint64(float64(max) * fraction)
		if n, ok := openFiles(); ok && n > limit {
			return kerr.New(kerr.NotEnoughResources, "Reached KMS files limit: %d", limit)
		}
	}
	return nil
}

// rlimitNPROC is RLIMIT_NPROC on Linux (the syscall package does not name it).
const rlimitNPROC = 6

// rlimit returns the soft limit of a resource, 0 when unlimited or unknown.
func rlimit(resource int) uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(resource, &l); err != nil || l.Cur == ^uint64(0) {
		return 0
	}
	return l.Cur
}

// threadCount reads num_threads, field 20 of /proc/self/stat.
func threadCount() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may contain spaces; the first of
	// them is field 3 (state), so num_threads is at index 17.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 18 {
		return 0, false
	}
	n, err := strconv.ParseUint(fields[17], 10, 64)
	return n, err == nil
}

// openFiles counts the process's open descriptors.
func openFiles() (uint64, bool) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, false
	}
	return uint64(len(names)), true
}
