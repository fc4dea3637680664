// Package uriguard decides which URIs PlayerEndpoint may read and RecorderEndpoint may write: an
// allow-list of schemes and of path prefixes for file:// URIs, checked on the normalised path (and on
// the path with its directories' symbolic links resolved), and the opening of recording files that
// refuses anything but a regular file outside the kernel's pseudo file systems.
package uriguard

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Policy is an allow-list; empty lists allow anything, as KMS does.
type Policy struct {
	Schemes      []string // lower-case
	PathPrefixes []string // absolute directories
}

// Normalize cleans the path of a file:// URI in place ("/../../etc/x" is "/etc/x"), so that what is
// checked is what is opened. GStreamer's filesrc (GLib's g_filename_from_uri) reads a "?" as part
// of the file name, so the query is part of the path here too: "/dir/x?/../../etc/y" is
// "/etc/y", not "/dir/x".
func Normalize(u *url.URL) {
	if u.Scheme != "file" {
		return
	}
	if u.RawQuery != "" || u.ForceQuery {
		q, err := url.PathUnescape(u.RawQuery)
		if err != nil {
			q = u.RawQuery // GLib refuses it; read literally, it is at least the name checked
		}
		u.Path += "?" + q
		u.RawQuery, u.ForceQuery = "", false
	}
	if u.Path != "" {
		u.Path = path.Clean(u.Path)
		u.RawPath = ""
	}
}

// Check normalises u and tells whether the policy allows it; the error says why not.
func (p Policy) Check(u *url.URL) error {
	Normalize(u)
	if len(p.Schemes) > 0 && !slices.Contains(p.Schemes, u.Scheme) {
		return fmt.Errorf("URI scheme %q is not allowed (allowed: %s)", u.Scheme, strings.Join(p.Schemes, ", "))
	}
	if u.Scheme != "file" || len(p.PathPrefixes) == 0 {
		return nil
	}
	if !p.under(u.Path) {
		return fmt.Errorf("path %s is not under an allowed directory (allowed: %s)", u.Path, strings.Join(p.PathPrefixes, ", "))
	}
	// A symbolic link inside an allowed directory must not lead out of it.
	if real, ok := resolveDirs(u.Path); ok && !p.under(real) {
		return fmt.Errorf("path %s leads to %s, which is not under an allowed directory", u.Path, real)
	}
	return nil
}

// under tells whether the clean absolute path lies in one of the prefixes (or their resolved form).
func (p Policy) under(file string) bool {
	for _, prefix := range p.PathPrefixes {
		for _, dir := range []string{path.Clean(prefix), resolved(prefix)} {
			if dir == "" {
				continue // a prefix that does not exist (yet) has no resolved form
			}
			if dir == "/" || file == dir || strings.HasPrefix(file, dir+"/") {
				return true
			}
		}
	}
	return false
}

// resolved is the directory with its symbolic links resolved, or "" when it cannot be.
func resolved(dir string) string {
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return ""
	}
	return r
}

// resolveDirs resolves the symbolic links of the file's directories (the file itself may not exist
// yet); false when the directory does not exist.
func resolveDirs(file string) (string, bool) {
	dir := resolved(filepath.Dir(file))
	if dir == "" {
		return "", false
	}
	return filepath.Join(dir, filepath.Base(file)), true
}

// systemDirs hold the kernel's pseudo files and devices: a recording is never written there.
var systemDirs = []string{"/proc", "/sys", "/dev"}

// pseudoFS are the magic numbers (statfs f_type) of file systems whose "regular" files are kernel
// interfaces: proc, sysfs, debugfs, tracefs, securityfs, cgroup, cgroup2, devpts, configfs, bpf.
var pseudoFS = []int64{0x9fa0, 0x62656572, 0x64626720, 0x74726163, 0x73636673, 0x27e0eb, 0x63677270,
	0x1cd1, 0x62656570, 0xcafe4a11}

// ErrNotRegular is the error of a destination that is not, or would not be, a regular file.
var ErrNotRegular = errors.New("not a regular file")

// CheckWritable tells early (at create) whether a recording could be written at the clean absolute
// path: not in /proc, /sys or /dev, and not over an existing file that is not regular (a device, a
// FIFO, a socket, a symbolic link).
func CheckWritable(file string) error {
	real := file
	if r, ok := resolveDirs(file); ok {
		real = r
	}
	for _, dir := range systemDirs {
		if real == dir || strings.HasPrefix(real, dir+"/") {
			return fmt.Errorf("cannot record to %s: %w (a system directory)", file, ErrNotRegular)
		}
	}
	if st, err := os.Lstat(file); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("cannot record to %s: %w (%s)", file, ErrNotRegular, st.Mode().Type())
	}
	return nil
}

// OpenRegular creates or truncates a regular file for writing a recording. It never follows a
// symbolic link at the last component, never blocks on a FIFO, and refuses devices, sockets and the
// files of pseudo file systems, whatever the allow-list says.
func OpenRegular(file string) (*os.File, error) {
	if err := CheckWritable(file); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("cannot record to %s: %w (a symbolic link)", file, ErrNotRegular)
		}
		return nil, err
	}
	if err := checkOpened(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot record to %s: %w", file, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func checkOpened(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w (%s)", ErrNotRegular, st.Mode().Type())
	}
	var fs syscall.Statfs_t
	// Fd also puts the file back in blocking mode: O_NONBLOCK only kept the open from waiting on a FIFO.
	if err := syscall.Fstatfs(int(f.Fd()), &fs); err == nil && slices.Contains(pseudoFS, int64(fs.Type)) {
		return fmt.Errorf("%w (a kernel pseudo file)", ErrNotRegular)
	}
	return nil
}
