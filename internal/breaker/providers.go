package breaker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// Provider failover: a job may name providers to fail over between (enqueue.Job.Providers, or its
// queue's list in the policy file). An error that blames the provider sends the next attempt at
// once to the next one (decide's failover row); a provider that keeps failing across jobs is
// skipped for a cool-down by every worker (the provider breaker below), then tried again by one
// job before the others follow. Only the errors of a provider the operator's policy names count
// toward its breaker (the attempt machine checks): a provider that only jobs name cannot be
// made to open a breaker every queue shares.

// Defaults of the provider breaker.
const (
	// ProviderFailuresDefault is how many provider-scoped errors in a row, across jobs and
	// workers, open a provider's breaker.
	ProviderFailuresDefault = 5
	// ProviderCooldownDefault is how long an open provider is skipped.
	ProviderCooldownDefault = time.Minute
	// providerProbeTimeout is how long the one job trying a provider after its cool-down has
	// before another may try.
	providerProbeTimeout = time.Minute
)

// ProvidersOf is the failover list of a job: its own, its one provider, or its queue's.
func ProvidersOf(p jobwire.Payload, queue string, policy *policyfile.Policy) []string {
	switch {
	case len(p.Providers) > 0:
		return p.Providers
	case p.Provider != "":
		return []string{p.Provider}
	default:
		return policy.Queue(queue).Providers
	}
}

// providerUsableScript says whether a provider may be sent a task: closed, or past its cool-down
// and not being probed by another job (this call then becomes the probe). KEYS[1] is its hash;
// ARGV[1] the probe timeout in ms.
var providerUsableScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if openUntil == 0 then return 1 end
if now < openUntil then return 0 end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
if probe > 0 and now - probe < tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'probe', now)
return 1`)

// providerFailedScript counts a provider-scoped error and opens the breaker after ARGV[1] in a
// row, or at once when the failing call was the probe after a cool-down; ARGV[2] is the cool-down
// in ms. It returns 1 when it opened the breaker.
var providerFailedScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local probing = redis.call('HEXISTS', KEYS[1], 'probe') == 1
if fails >= tonumber(ARGV[1]) or probing then
  redis.call('HSET', KEYS[1], 'openUntil', now + tonumber(ARGV[2]), 'fails', 0)
  redis.call('HDEL', KEYS[1], 'probe')
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
  return 1
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return 0`)

// Providers is the per-provider circuit breaker kept in Redis.
type Providers struct {
	Redis    redis.UniversalClient
	Failures int           // provider-scoped errors in a row that open a provider's breaker
	Cooldown time.Duration // how long an open provider is skipped
	Log      *slog.Logger
}

// Pick returns the index of the provider the attempt should use: the first usable one from
// start on, or start itself when none is (a job is never stalled by breakers alone).
func (b *Providers) Pick(ctx context.Context, providers []string, start int) int {
	start = min(max(start, 0), len(providers)-1)
	for i := start; i < len(providers); i++ {
		ok, err := providerUsableScript.Run(ctx, b.Redis, []string{keys.Provider(providers[i])}, providerProbeTimeout.Milliseconds()).Int()
		if err != nil || ok == 1 {
			return i
		}
	}
	return start
}

// Failed counts a provider-scoped error against provider; the caller counts only providers the
// operator's policy names.
func (b *Providers) Failed(ctx context.Context, provider, code string) {
	opened, err := providerFailedScript.Run(context.WithoutCancel(ctx), b.Redis, []string{keys.Provider(provider)},
		b.Failures, b.Cooldown.Milliseconds()).Int()
	if err == nil && opened == 1 {
		b.Log.Warn("provider keeps failing: skipped by every worker for a cool-down", "provider", provider,
			"code", code, "cooldown", b.Cooldown)
	}
}

// Succeeded closes provider's breaker: it solved a task.
func (b *Providers) Succeeded(ctx context.Context, provider string) {
	if err := b.Redis.Del(context.WithoutCancel(ctx), keys.Provider(provider)).Err(); err != nil {
		b.Log.Debug("could not reset a provider's breaker", "provider", provider, "err", err)
	}
}

// FailoverNote says where a failing-over job goes next.
func FailoverNote(providers []string, next int) string {
	return fmt.Sprintf(" (failing over to provider %s, %d of %d)", providers[next], next+1, len(providers))
}
