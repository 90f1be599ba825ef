package worker

import "strings"

// redisTrouble reports whether a log line is about Redis not answering: what go-redis and
// asynq say when a connection is refused, reset, times out or finds Redis still loading.
func redisTrouble(msg string) bool {
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "EOF",
		"LOADING", "connection pool timeout", "use of closed network connection", "no route to host",
		"network is unreachable", "context deadline exceeded", "context canceled", "redis: client is closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
