package elements_test

import "syscall"

// rtspSysProcAttr makes the RTSP server die with the test process.
func rtspSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
