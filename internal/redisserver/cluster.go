package redisserver

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrCLINotInstalled means the redis-cli binary, which creates a cluster, is not installed.
var ErrCLINotInstalled = errors.New("redis-cli not found: install redis-tools (apt-get install redis-tools)")

// clusterCreateTimeout bounds `redis-cli --cluster create` and the wait for every node to say
// the cluster is up.
const clusterCreateTimeout = 30 * time.Second

// ClusterOptions configures StartCluster. The zero value is three primaries without replicas.
type ClusterOptions struct {
	// Nodes is the number of primaries; 0 is 3 (Redis's minimum).
	Nodes int
	// Replicas is the number of replicas of each primary (redis-cli's --cluster-replicas); 0
	// is none.
	Replicas int
	// Binary is the server binary; "" looks up redis-server on PATH.
	Binary string
	// CLI is the redis-cli binary that creates the cluster; "" looks it up on PATH.
	CLI string
}

// Cluster is a Redis Cluster on 127.0.0.1, each node a Server, the hash slots shared among its
// primaries by `redis-cli --cluster create` (Redis's own sharding, for tests and the rig).
type Cluster struct {
	// Nodes are every node, primaries and replicas (redis-cli picks which is which).
	Nodes []*Server
}

// LookPathCLI returns the path of the redis-cli binary bin ("" for redis-cli on PATH), or an
// error wrapping ErrCLINotInstalled.
func LookPathCLI(bin string) (string, error) {
	if bin == "" {
		bin = "redis-cli"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrCLINotInstalled, err)
	}
	return path, nil
}

// StartCluster starts the nodes with cluster mode on, creates the cluster with redis-cli
// (--cluster-replicas as opts.Replicas says) and waits until every node says the cluster is up. Without
// redis-server or redis-cli it returns an error wrapping ErrNotInstalled or ErrCLINotInstalled.
func StartCluster(ctx context.Context, opts ClusterOptions) (c *Cluster, err error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	cli, err := LookPathCLI(opts.CLI)
	if err != nil {
		return nil, err
	}
	c = &Cluster{}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	args := []string{"--cluster", "create"}
	total := opts.Nodes * (1 + max(opts.Replicas, 0))
	for range total {
		s, err := Start(ctx, Options{Binary: opts.Binary, Args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}})
		if err != nil {
			return c, err
		}
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(max(opts.Replicas, 0)), "--cluster-yes")
	ctx, cancel := context.WithTimeout(ctx, clusterCreateTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return c, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, s := range c.Nodes {
		if err := waitClusterOK(ctx, s.Addr, total); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	return addrs
}

// URL returns the cluster as solvequeue's REDIS_URL: "redis-cluster://host:port,host:port,...".
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs(), ",") }

// Stop stops every node.
func (c *Cluster) Stop() error {
	var errs []error
	for _, s := range c.Nodes {
		errs = append(errs, s.Stop())
	}
	return errors.Join(errs...)
}

// waitClusterOK waits until the node at addr knows n nodes and says the cluster is ok.
func waitClusterOK(ctx context.Context, addr string, n int) error {
	cl := newClient(addr)
	defer cl.Close()
	want := fmt.Sprintf("cluster_known_nodes:%d", n)
	var last string
	for {
		info, err := cl.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, want) {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = strings.Join(strings.Fields(info), " ")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster node %s is not up: %w (last: %s)", addr, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SpreadQueues returns n queue names, each "<prefix><i>", whose hash tags ({queue}, as asynq's
// and solvequeue's keys carry them) fall on different slots and whose slots' owners cover every
// node of the cluster when n is at least its size: queues spread over the cluster as a user's
// would.
func (c *Cluster) SpreadQueues(ctx context.Context, prefix string, n int) ([]string, error) {
	if len(c.Nodes) == 0 {
		return nil, errors.New("the cluster has no nodes")
	}
	cl := newClient(c.Nodes[0].Addr)
	defer cl.Close()
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	nodeOf := func(slot int64) string {
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
				return r.Nodes[0].Addr
			}
		}
		return ""
	}
	nodes := map[string]bool{}
	for _, r := range slots {
		if len(r.Nodes) > 0 {
			nodes[r.Nodes[0].Addr] = true
		}
	}
	var picked []string
	usedSlot, usedNode := map[int64]bool{}, map[string]bool{}
	for i := 0; len(picked) < n && i < 10_000; i++ {
		q := prefix + strconv.Itoa(i)
		slot, err := cl.ClusterKeySlot(ctx, "{"+q+"}").Result()
		if err != nil {
			return nil, fmt.Errorf("CLUSTER KEYSLOT: %w", err)
		}
		node := nodeOf(slot)
		if node == "" || usedSlot[slot] || (usedNode[node] && len(usedNode) < len(nodes)) {
			continue
		}
		usedSlot[slot], usedNode[node] = true, true
		picked = append(picked, q)
	}
	if len(picked) < n {
		return nil, fmt.Errorf("found %d of %d queue names on distinct slots", len(picked), n)
	}
	return picked, nil
}
