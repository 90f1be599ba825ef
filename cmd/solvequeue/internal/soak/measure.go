package soak

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// measure samples this process and Redis.
func measure(ctx context.Context, rc redis.UniversalClient) Sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := Sample{RSSBytes: procStatusBytes("VmRSS"), HeapBytes: ms.HeapAlloc, Goroutines: runtime.NumGoroutine(),
		Sockets: countSockets()}
	if info, err := rc.Info(ctx, "memory").Result(); err == nil {
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				s.RedisMemory, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return s
}

// procStatusBytes reads a kB field of /proc/self/status; -1 where there is none (not Linux).
func procStatusBytes(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return -1
}

// countSockets counts this process's open sockets in /proc/self/fd; -1 where there is none.
func countSockets() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}
