package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// sendEvents are the system calls a server sends UDP with: one datagram (sendto, sendmsg, write on a
// connected socket) or a batch (sendmmsg).
var sendEvents = []string{"sendto", "sendmsg", "sendmmsg", "write"}

// syscallCount counts a server's system calls over a window with `perf stat` on the kernel's
// tracepoints: counted in the kernel, so the server runs at full speed (strace would stop it at every
// call). /proc/PID/io's syscw is no substitute: it counts write(2) and friends, not sendto/sendmmsg.
type syscallCount struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startSyscallCount starts counting pid's system calls, or returns nil when perf cannot.
func startSyscallCount(pid int) *syscallCount {
	if pid == 0 {
		return nil
	}
	path, err := exec.LookPath("perf")
	if err != nil {
		return nil
	}
	events := []string{"raw_syscalls:sys_enter"}
	for _, e := range sendEvents {
		events = append(events, "syscalls:sys_enter_"+e)
	}
	c := &syscallCount{cmd: exec.Command(path, "stat", "-x,", "-e", strings.Join(events, ","), "-p", strconv.Itoa(pid))}
	c.cmd.Stderr = &c.out
	if c.cmd.Start() != nil {
		return nil
	}
	return c
}

// stop ends the count: every system call, and those that send.
func (c *syscallCount) stop() (total, send int64, err error) {
	c.cmd.Process.Signal(os.Interrupt)
	c.cmd.Wait()
	found := false
	for _, l := range strings.Split(c.out.String(), "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 {
			continue
		}
		n, perr := strconv.ParseInt(f[0], 10, 64)
		if perr != nil {
			continue // <not counted> or <not supported>
		}
		switch ev := f[2]; {
		case ev == "raw_syscalls:sys_enter":
			total, found = n, true
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			send += n
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("perf stat: %s", strings.TrimSpace(c.out.String()))
	}
	return total, send, nil
}
