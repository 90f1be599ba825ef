// temporary: removed at merge. Forwarding names for the worker's root package (worker/*.go),
// which is split at the same time and keeps its references to enqueue.X until the merge
// rewrites them to the packages named here.

package enqueue

import (
	"context"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/failedindex"
	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

type Balance = balance.Balance
type DeadLetter = deadletter.Letter
type Payload = jobwire.Payload
type Record = jobwire.Record
type RedisHealth = redisconn.Health
type RedisHealthParams = redisconn.HealthParams
type Remote = jobwire.Remote

const AsynqMaxRetryDefault = jobwire.AsynqMaxRetryDefault
const DeadLetterLimitDefault = deadletter.LimitDefault
const FailedIndexAge = failedindex.Age
const FailedIndexMax = failedindex.Max
const PayloadVersion = jobwire.PayloadVersion
const TaskType = jobwire.TaskType

var CountDeadLetters = deadletter.Count
var DecodePayload = jobwire.DecodePayload
var DecodeRecord = jobwire.DecodeRecord
var DropBody = imagebody.Drop
var ErrDeadLetterFull = deadletter.ErrFull
var FailedMember = failedindex.Member
var KeepBody = imagebody.Keep
var KnownQueues = queuereg.Known
var NewRedisHealth = redisconn.NewHealth
var OpenRedis = redisconn.Open
var PutDeadLetter = deadletter.Put
var ReadBalance = balance.Read
var RedactAndTruncate = redact.AndTruncate
var RedactText = redact.Text
var RedactURL = redact.URL
var RegisterQueues = queuereg.Register
var SecretValues = redact.SecretValues
var ValidQueueName = queuereg.ValidName
var WriteBalance = balance.Write

// Methods the worker root's tests call on a Client; they move to admin.Client (DeadLetter,
// DeadLetters, Redrive, RedriveFailed) or leave the API (Redis, Inspector).

func (c *Client) Redis() redis.UniversalClient { return c.rc }

func (c *Client) Inspector() *asynq.Inspector { return c.inspector }

func (c *Client) admin() *admin.Client {
	a, _ := admin.NewClient(admin.Config{Redis: c.rc, Retention: c.cfg.Retention,
		AttemptTimeout: c.cfg.AttemptTimeout, BlobTTL: c.cfg.BlobTTL, Now: c.cfg.Now})
	return a
}

func (c *Client) DeadLetter(ctx context.Context, queue, id string) (DeadLetter, error) {
	return c.admin().DeadLetter(ctx, queue, id)
}

func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	return c.admin().DeadLetters(ctx)
}

func (c *Client) Redrive(ctx context.Context, d DeadLetter) error {
	return c.admin().Redrive(ctx, d)
}

func (c *Client) RedriveFailed(ctx context.Context, queue, id string) (string, error) {
	return c.admin().RedriveFailed(ctx, queue, id)
}
