package redisconn

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/redact"
)

// The REDIS_URL schemes solvequeue takes. Each is Redis's own distribution reached through
// go-redis's own client, which asynq is given too: one server (redis://, rediss://, or asynq's
// redis-socket://), a primary watched by Sentinel (redis-sentinel://: go-redis's
// FailoverClient), or a Redis Cluster (redis-cluster://: go-redis's ClusterClient).
const (
	SchemeRedis    = "redis"
	SchemeRedisTLS = "rediss"
	SchemeSocket   = "redis-socket"
	SchemeSentinel = "redis-sentinel"
	SchemeCluster  = "redis-cluster"
)

// Default ports of the addresses of a redis-sentinel:// or redis-cluster:// URL written without one.
const (
	sentinelPortDefault = "26379"
	clusterPortDefault  = "6379"
)

// schemesHelp lists the URL forms Open takes, for error messages.
const schemesHelp = "want redis://[user:password@]host:port/db, rediss:// (TLS), redis-socket:///path, " +
	"redis-sentinel://[user:password@]host:port[,host:port...][/db]?master=NAME[&sentinel_password=SECRET] or " +
	"redis-cluster://[user:password@]host:port[,host:port...]"

// newRedisClient parses rawURL and returns a client for it, not connected yet. poolSize > 0
// sets the connection pool's size (per node, for a cluster).
func newRedisClient(rawURL string, poolSize int) (redis.UniversalClient, error) {
	scheme, _, _ := strings.Cut(rawURL, "://")
	switch strings.ToLower(scheme) {
	case SchemeRedis, SchemeRedisTLS:
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, redisURLError(rawURL, err)
		}
		if poolSize > 0 {
			opt.PoolSize = poolSize
		}
		return redis.NewClient(opt), nil
	case SchemeSentinel:
		opt, err := ParseSentinelURL(rawURL)
		if err != nil {
			return nil, redisURLError(rawURL, err)
		}
		if poolSize > 0 {
			opt.PoolSize = poolSize
		}
		return redis.NewFailoverClient(opt), nil
	case SchemeCluster:
		opt, err := ParseClusterURL(rawURL)
		if err != nil {
			return nil, redisURLError(rawURL, err)
		}
		if poolSize > 0 {
			opt.PoolSize = poolSize
		}
		return redis.NewClusterClient(opt), nil
	case SchemeSocket:
		opt, err := asynq.ParseRedisURI(rawURL)
		if err != nil {
			return nil, redisURLError(rawURL, err)
		}
		c, ok := opt.MakeRedisClient().(redis.UniversalClient)
		if !ok {
			return nil, errors.New("REDIS_URL: unsupported Redis client kind")
		}
		return c, nil
	}
	if !strings.Contains(rawURL, "://") {
		// A bare host:port, as REDIS_URL=127.0.0.1:6390: say which URL was probably meant.
		return nil, redisURLError(rawURL, fmt.Errorf("no scheme: did you mean redis://%s?", shownURL(rawURL)))
	}
	return nil, redisURLError(rawURL, fmt.Errorf("unknown scheme %q", scheme))
}

// redisURLError says what is wrong with rawURL, its password redacted wherever it shows.
func redisURLError(rawURL string, err error) error {
	return fmt.Errorf("REDIS_URL %q: %w (%s)", shownURL(rawURL), redact.URLError(err, rawURL), schemesHelp)
}

// shownURL is rawURL with its password redacted, also when it lacks its scheme
// ("user:password@host:port").
func shownURL(rawURL string) string {
	if strings.Contains(rawURL, "://") {
		return redact.URL(rawURL)
	}
	return strings.TrimPrefix(redact.URL("//"+rawURL), "//")
}

// ParseSentinelURL parses redis-sentinel://[user:password@]host:port[,host:port...][/db]?master=NAME
// into go-redis's FailoverOptions: the addresses are the Sentinels' (port 26379 when left out),
// master is the name they monitor, and the user and password are those of the Redis primary
// and replicas (what solvequeue reads and writes). The Sentinels themselves are asked without
// a password, as `sentinel auth-pass` deployments run them, unless sentinel_password=SECRET
// (and sentinel_username=USER, for an ACL user) gives the Sentinels' own (their requirepass);
// redact.URL hides it wherever the URL is shown.
func ParseSentinelURL(rawURL string) (*redis.FailoverOptions, error) {
	u, err := parseMultiHostURL(rawURL, SchemeSentinel)
	if err != nil {
		return nil, err
	}
	addrs, err := splitAddrs(u.Host, sentinelPortDefault)
	if err != nil {
		return nil, err
	}
	opt := &redis.FailoverOptions{SentinelAddrs: addrs}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if opt.DB, err = dbOf(u.Path); err != nil {
		return nil, err
	}
	q := u.Query()
	opt.MasterName = q.Get("master")
	opt.SentinelUsername, opt.SentinelPassword = q.Get(sentinelUserParam), q.Get(SentinelPasswordParam)
	q.Del("master")
	q.Del(sentinelUserParam)
	q.Del(SentinelPasswordParam)
	if opt.MasterName == "" {
		return nil, errors.New("no ?master=NAME: the name the Sentinels monitor the primary under")
	}
	if len(q) > 0 {
		return nil, fmt.Errorf("unknown parameter(s) %s: only master, %s and %s are taken",
			strings.Join(keysOf(q), ", "), sentinelUserParam, SentinelPasswordParam)
	}
	return opt, nil
}

// SentinelPasswordParam is the redis-sentinel:// URL's parameter that carries the Sentinels'
// own password; sentinelUserParam names their ACL user.
const (
	SentinelPasswordParam = redact.SentinelPasswordParam
	sentinelUserParam     = "sentinel_username"
)

// ParseClusterURL parses redis-cluster://[user:password@]host:port[,host:port...] into go-redis's
// ClusterOptions: the addresses are seeds (any nodes of the cluster; port 6379 when left out),
// from which the client learns every node and slot. A cluster has one database, 0.
func ParseClusterURL(rawURL string) (*redis.ClusterOptions, error) {
	u, err := parseMultiHostURL(rawURL, SchemeCluster)
	if err != nil {
		return nil, err
	}
	addrs, err := splitAddrs(u.Host, clusterPortDefault)
	if err != nil {
		return nil, err
	}
	opt := &redis.ClusterOptions{Addrs: addrs}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if db, err := dbOf(u.Path); err != nil || db != 0 {
		return nil, fmt.Errorf("path %q: a Redis Cluster has only database 0", u.Path)
	}
	if q := u.Query(); len(q) > 0 {
		return nil, fmt.Errorf("unknown parameter(s) %s: a redis-cluster:// URL takes none", strings.Join(keysOf(q), ", "))
	}
	return opt, nil
}

// parseMultiHostURL parses a URL whose host part may list several host[:port] addresses (which
// url.Parse alone refuses when one but the last has no port): it returns the URL with the
// addresses in Host as written.
func parseMultiHostURL(rawURL, scheme string) (*url.URL, error) {
	head, rest, ok := strings.Cut(rawURL, "://")
	if !ok || !strings.EqualFold(head, scheme) {
		return nil, fmt.Errorf("scheme %q: want %s://", head, scheme)
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hosts := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	}
	if hosts == "" {
		return nil, errors.New("no host:port address")
	}
	// Parse the rest with a stand-in host, then put the list back.
	u, err := url.Parse(scheme + "://" + userinfo + "hosts" + tail)
	if err != nil {
		return nil, err
	}
	if u.Fragment != "" {
		return nil, errors.New("a #fragment means nothing here")
	}
	u.Host = hosts
	return u, nil
}

// splitAddrs splits a comma-separated list of host[:port] addresses, adding defaultPort where
// the port is left out.
func splitAddrs(hosts, defaultPort string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(hosts, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("empty address in %q", hosts)
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			// No port: the whole is the host (an IPv6 literal must be bracketed).
			host, port = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"), defaultPort
		}
		if host == "" {
			return nil, fmt.Errorf("address %q has no host", a)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("address %q: bad port", a)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	return addrs, nil
}

// dbOf reads the database number of a URL path: "" and "/" are 0.
func dbOf(path string) (int, error) {
	p := strings.Trim(path, "/")
	if p == "" {
		return 0, nil
	}
	db, err := strconv.Atoi(p)
	if err != nil || db < 0 {
		return 0, fmt.Errorf("path %q: want /<database number>", path)
	}
	return db, nil
}

func keysOf(q url.Values) []string { return slices.Sorted(maps.Keys(q)) }
