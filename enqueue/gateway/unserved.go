package gateway

import (
	"fmt"
	"slices"

	"github.com/solvequeue/solvequeue/enqueue"
)

// localKey is the key every client has on a gateway without a keys file.
func localKey() Key {
	return Key{Name: LocalKeyName, Queue: enqueue.DefaultQueue, Lifetime: LifetimeDefault, MaxJobsInFlight: MaxJobsInFlightDefault,
		MaxJobsWaiting: MaxJobsWaitingDefault, MaxImageBytesWaiting: MaxImageBytesWaitingDefault}
}

// Unserved returns the keys (in keys-file order; the one local key without a keys file) whose
// queue no running worker serves (enqueue.Client.Unserved): their jobs wait in Redis until a
// worker for that queue starts, and end unsolved once their key's lifetime is over. The gateway
// logs them at start and its /readyz names them (UnservedWarnings).
func (h *Handler) Unserved() ([]Key, error) {
	all := []Key{localKey()}
	if h.cfg.Keys != nil {
		all = h.cfg.Keys.list
	}
	queues := make([]string, 0, len(all))
	for _, k := range all {
		queues = append(queues, k.Queue)
	}
	unserved, err := h.client.Unserved(queues...)
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range all {
		if slices.Contains(unserved, k.Queue) {
			out = append(out, k)
		}
	}
	return out, nil
}

// UnservedWarnings says, a line per key, which keys' queues no running worker serves, for a
// readiness probe: a gateway whose keys nobody serves still takes tasks (a worker may start
// later), so this is a warning, not a reason to be unready. A failure to list the workers is a
// line of its own.
func (h *Handler) UnservedWarnings() []string {
	keys, err := h.Unserved()
	if err != nil {
		return []string{"could not tell which queues workers serve: " + err.Error()}
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("key %s: no worker serves its queue %s; its jobs wait and end JOB_EXPIRED after the key's lifetime (%s)",
			k.Name, k.Queue, k.lifetime()))
	}
	return out
}
