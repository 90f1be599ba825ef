package enqueue

import (
	"fmt"
	"slices"
)

// Unserved returns those of queues (sorted, each once) that no running worker serves: no asynq
// server in state "active" lists it. Every worker writes its server record into Redis every
// 5 s and it expires 10 s later, so a worker that starts is seen at once and one that stopped
// drops out within seconds. A job on an unserved queue waits, silently, until a worker serving
// its queue starts: a producer may warn about it.
func (c *Client) Unserved(queues ...string) ([]string, error) {
	servers, err := c.inspector.Servers()
	if err != nil {
		return nil, fmt.Errorf("list the running workers: %w", err)
	}
	served := map[string]bool{}
	for _, s := range servers {
		if s.Status != "active" {
			continue
		}
		for q := range s.Queues {
			served[q] = true
		}
	}
	var out []string
	for _, q := range queues {
		if q == "" {
			q = DefaultQueue
		}
		if !served[q] && !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out, nil
}
