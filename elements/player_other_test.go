//go:build !linux

package elements_test

import "syscall"

func rtspSysProcAttr() *syscall.SysProcAttr { return nil }
