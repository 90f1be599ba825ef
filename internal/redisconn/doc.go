// Package redisconn opens the Redis connection solvequeue runs on, from a REDIS_URL: one server
// (redis://, rediss://, redis-socket://), a primary watched by Sentinel (redis-sentinel://) or a
// Redis Cluster (redis-cluster://), with every error naming the URL with its password redacted.
// Health watches that connection and says once when Redis stops answering and once when it
// answers again.
package redisconn
