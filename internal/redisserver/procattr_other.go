//go:build !linux

package redisserver

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a test process that
// dies early may leave its server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
