package redisserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelOptions configures StartSentinel. The zero value is a primary with one replica and
// one Sentinel that fails over after a second of silence.
type SentinelOptions struct {
	// Master is the name the Sentinel monitors the primary under; "" is "solvequeue".
	Master string
	// Replicas is the number of replicas of the primary; 0 is 1.
	Replicas int
	// DownAfter is how long the primary may be silent before the Sentinel fails it over; 0 is
	// one second.
	DownAfter time.Duration
	// Binary is the server binary (redis-server runs a Sentinel with --sentinel); "" looks up
	// redis-server on PATH.
	Binary string
	// SentinelPassword, when set, is the Sentinel's own password (its requirepass); the
	// primary and replicas keep none.
	SentinelPassword string
}

// Sentinel is a Redis primary with its replicas and one Sentinel watching them, each a Server
// on 127.0.0.1 (Redis's own high availability, for tests and the rig).
type Sentinel struct {
	Master string
	// Password is the Sentinel's own password ("" for none).
	Password string
	Primary  *Server
	Replicas []*Server
	Sentinel *Server
}

// StartSentinel starts the primary, its replicas (each in sync with the primary before the
// Sentinel starts, so that the Sentinel finds them at once), and the Sentinel; it returns once
// the Sentinel knows every replica. Without redis-server it returns an error wrapping
// ErrNotInstalled.
func StartSentinel(ctx context.Context, opts SentinelOptions) (g *Sentinel, err error) {
	if opts.Master == "" {
		opts.Master = "solvequeue"
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.DownAfter <= 0 {
		opts.DownAfter = time.Second
	}
	g = &Sentinel{Master: opts.Master, Password: opts.SentinelPassword}
	defer func() {
		if err != nil {
			_ = g.Stop()
		}
	}()
	if g.Primary, err = Start(ctx, Options{Binary: opts.Binary}); err != nil {
		return g, err
	}
	host, port, _ := net.SplitHostPort(g.Primary.Addr)
	for range opts.Replicas {
		r, err := Start(ctx, Options{Binary: opts.Binary, Args: []string{"--replicaof", host, port}})
		if err != nil {
			return g, err
		}
		g.Replicas = append(g.Replicas, r)
		if err := waitLinkUp(ctx, r.Addr); err != nil {
			return g, fmt.Errorf("replica %s: %w", r.Addr, err)
		}
	}
	downMs := strconv.FormatInt(opts.DownAfter.Milliseconds(), 10)
	conf := strings.Join([]string{
		"sentinel monitor " + opts.Master + " " + host + " " + port + " 1",
		"sentinel down-after-milliseconds " + opts.Master + " " + downMs,
		"sentinel failover-timeout " + opts.Master + " 10000",
		"sentinel parallel-syncs " + opts.Master + " 1",
	}, "\n") + "\n"
	if opts.SentinelPassword != "" {
		conf += "requirepass " + opts.SentinelPassword + "\n"
	}
	if g.Sentinel, err = Start(ctx, Options{Binary: opts.Binary, Config: conf, Args: []string{"--sentinel"},
		Password: opts.SentinelPassword}); err != nil {
		return g, err
	}
	if err := g.waitReplicasKnown(ctx, len(g.Replicas)); err != nil {
		return g, err
	}
	return g, nil
}

// URL returns the Sentinel's address as solvequeue's REDIS_URL:
// "redis-sentinel://127.0.0.1:port?master=NAME", and "&sentinel_password=..." when the Sentinel
// has a password.
func (g *Sentinel) URL() string {
	u := "redis-sentinel://" + g.Sentinel.Addr + "?master=" + g.Master
	if g.Password != "" {
		u += "&sentinel_password=" + url.QueryEscape(g.Password)
	}
	return u
}

// PrimaryAddr asks the Sentinel where the primary is now.
func (g *Sentinel) PrimaryAddr(ctx context.Context) (string, error) {
	c := g.sentinelClient()
	defer c.Close()
	addr, err := c.GetMasterAddrByName(ctx, g.Master).Result()
	if err != nil {
		return "", fmt.Errorf("ask the Sentinel for %s's primary: %w", g.Master, err)
	}
	if len(addr) != 2 {
		return "", fmt.Errorf("the Sentinel answered %q for %s's primary", addr, g.Master)
	}
	return net.JoinHostPort(addr[0], addr[1]), nil
}

// WaitFailover waits until the Sentinel names a primary other than old and that server says it
// is a primary (the promoted replica); it returns its address.
func (g *Sentinel) WaitFailover(ctx context.Context, old string) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("no failover yet")
	for {
		addr, err := g.PrimaryAddr(ctx)
		switch {
		case err != nil:
			last = err
		case addr == old:
			last = fmt.Errorf("the Sentinel still names %s", old)
		default:
			if last = roleIs(ctx, addr, "master"); last == nil {
				return addr, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for a failover away from %s: %w (last: %v)", old, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Stop stops every server of the group; a server stopped or killed already is skipped.
func (g *Sentinel) Stop() error {
	var errs []error
	for _, s := range append(append([]*Server{g.Sentinel}, g.Replicas...), g.Primary) {
		if s != nil {
			errs = append(errs, s.Stop())
		}
	}
	return errors.Join(errs...)
}

func (g *Sentinel) sentinelClient() *redis.SentinelClient {
	return redis.NewSentinelClient(clientOptions(g.Sentinel.Addr, g.Password))
}

// waitReplicasKnown waits until the Sentinel lists n replicas of the primary, none of them down.
func (g *Sentinel) waitReplicasKnown(ctx context.Context, n int) error {
	c := g.sentinelClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		replicas, err := c.Replicas(ctx, g.Master).Result()
		up := 0
		for _, r := range replicas {
			if flags := r["flags"]; !strings.Contains(flags, "down") && !strings.Contains(flags, "disconnected") {
				up++
			}
		}
		if err == nil && up >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Sentinel on %s did not find %d replica(s) of %s: %w (last: %d up, %v)",
				g.Sentinel.Addr, n, g.Master, ctx.Err(), up, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLinkUp waits until the replica at addr is in sync with its primary.
func waitLinkUp(ctx context.Context, addr string) error {
	c := newClient(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not in sync with its primary: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// roleIs checks that the server at addr answers ROLE with role ("master" or "slave").
func roleIs(ctx context.Context, addr, role string) error {
	c := newClient(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	res, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return fmt.Errorf("ROLE on %s: %w", addr, err)
	}
	if len(res) == 0 || res[0] != role {
		return fmt.Errorf("%s is not a %s yet (ROLE %v)", addr, role, res)
	}
	return nil
}
