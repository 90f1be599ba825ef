//go:build linux

package redisserver

import "syscall"

// sysProcAttr asks Linux to kill the server when the test process dies early.
// (Strictly, when the OS thread that started it exits; Go's threads live as
// long as the process unless a goroutine locked to one exits.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
