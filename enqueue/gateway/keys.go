package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/yamlfile"
)

// Limits of a keys file.
const (
	// MinKeyLength is the shortest key accepted in clear: a shorter one is guessable.
	MinKeyLength = 16
	// maxKeysFileBytes bounds what LoadKeys reads.
	maxKeysFileBytes = 1 << 20
	// maxRateLimit bounds a key's rateLimit per second.
	maxRateLimit = 1_000_000
	// maxQuotaJobs bounds a key's maxJobsInFlight and maxJobsWaiting.
	maxQuotaJobs = 10_000_000
	// maxQuotaBytes bounds a key's maxImageBytesWaiting (1 TiB).
	maxQuotaBytes = 1 << 40
)

// Defaults of a key's quotas: what one key may hold in the Redis every key shares, so that one
// key (a bug in a scraper, or an attacker with a key) cannot fill it and make every other key's
// createTask fail. A thousand jobs is more than a scraper has captchas open at once; 64 MiB of
// image bodies is 32 images of the largest body the gateway reads (--max-body, 2 MiB).
const (
	// MaxJobsInFlightDefault is a key's maxJobsInFlight when the keys file gives none.
	MaxJobsInFlightDefault = 1000
	// MaxJobsWaitingDefault is a key's maxJobsWaiting when the keys file gives none.
	MaxJobsWaitingDefault = 1000
	// MaxImageBytesWaitingDefault is a key's maxImageBytesWaiting when the keys file gives none.
	MaxImageBytesWaitingDefault = 64 << 20
)

// Bounds of a key's lifetime.
const (
	// LifetimeDefault is how long a key's job may wait and be tried before it ends unsolved, when
	// its key names no lifetime: about as long as the anti-captcha services keep a task, and as
	// long as AnySolver keeps one. A client that gave up on a captcha long ago stops paying for it.
	LifetimeDefault = 5 * time.Minute
	// MinLifetime is the shortest lifetime a key may have: a captcha takes seconds to solve.
	MinLifetime = 10 * time.Second
	// MaxLifetime is the longest: a token solved a day late is worth nothing.
	MaxLifetime = 24 * time.Hour
)

// LocalKeyName is the name every key gets on a loopback gateway started without a keys file.
const LocalKeyName = "local"

var keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Key is one gateway key: the name logs, metrics and the web UI show, the queue its jobs go
// to, its rate limit and its quotas. The key itself is kept only as its SHA-256. Its rate limit
// and quotas are counted in Redis, shared by every gateway on that Redis.
type Key struct {
	// Name identifies the key everywhere the key itself must not appear.
	Name string
	// Queue is where the key's jobs go.
	Queue string
	// RateLimit is the most requests per second the key may make (any method); 0 is no limit.
	RateLimit float64
	// Lifetime is the deadline of the key's jobs, counted from their submission: a job not
	// solved by then ends (JOB_EXPIRED, or the error that held it), and getTaskResult answers
	// that error from then on, even when no worker serves the key's queue. Defaults to
	// LifetimeDefault.
	Lifetime time.Duration
	// MaxJobsInFlight is the most jobs of the key accepted and not yet ended (solved, failed,
	// dead); 0 is no limit. ParseKeys gives MaxJobsInFlightDefault to a key without one.
	MaxJobsInFlight int64
	// MaxJobsWaiting is the most jobs of the key accepted and not yet taken by a worker; 0 is
	// no limit. ParseKeys gives MaxJobsWaitingDefault to a key without one.
	MaxJobsWaiting int64
	// MaxImageBytesWaiting is the most bytes of image bodies (as sent, base64) of the key's jobs
	// not yet ended; 0 is no limit. ParseKeys gives MaxImageBytesWaitingDefault to a key
	// without one.
	MaxImageBytesWaiting int64

	digest [sha256.Size]byte
}

// Keys is a parsed keys file. It is immutable and safe for concurrent use.
type Keys struct {
	list    []Key
	secrets map[string]string // a key's name to its callbackSecret; kept out of Key, which is passed around and logged by name
}

// CallbackSecrets returns a new map of the name of each key that has a callbackSecret to that
// secret, which the workers sign the callbacks of the key's jobs with (worker.Config's
// CallbackKeySecrets). The gateway never needs it.
func (k *Keys) CallbackSecrets() map[string]string { return maps.Clone(k.secrets) }

// Names returns the key names in file order.
func (k *Keys) Names() []string {
	out := make([]string, len(k.list))
	for i, key := range k.list {
		out[i] = key.Name
	}
	return out
}

// Lookup returns the key a client sent, comparing its SHA-256 with every key's in constant
// time: how long it takes says nothing about which key, or how much of one, matched.
func (k *Keys) Lookup(clientKey string) (Key, bool) {
	sum := sha256.Sum256([]byte(clientKey))
	found := -1
	for i := range k.list {
		if subtle.ConstantTimeCompare(sum[:], k.list[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Key{}, false
	}
	return k.list[found], true
}

// KeysError is a keys file the parser refused: its File, the 1-based Line at fault (0 when the
// fault has no line) and Msg. Error returns "file: line N: message".
type KeysError = yamlfile.Error

// LoadKeys reads and parses a keys file; see ParseKeys.
func LoadKeys(path string) (*Keys, error) {
	data, err := yamlfile.ReadFile(path, maxKeysFileBytes)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	return ParseKeys(path, data)
}

// ParseKeys reads a keys file (YAML, or JSON, which is YAML):
//
//	keys:
//	  - name: alpha          # 1-64 of A-Z a-z 0-9 _ . -; shown in logs, metrics, the web UI
//	    key: gk-...          # the key in clear, at least 16 characters ...
//	    queue: alpha         # the queue its jobs go to
//	  - name: beta
//	    sha256: 9f86d0...    # ... or its SHA-256 in hex (echo -n KEY | sha256sum)
//	    queue: beta
//	    rateLimit: 50        # requests per second, any method; optional
//	    lifetime: 10m        # the deadline of its jobs; optional, LifetimeDefault when absent
//	    callbackSecret: ...  # signs its jobs' callbacks, at least 16 characters; optional (CallbackSecrets)
//	    maxJobsInFlight: 200 # jobs accepted and not yet ended; 0: no limit
//	    maxJobsWaiting: 100  # jobs accepted and not yet taken by a worker; 0: no limit
//	    maxImageBytesWaiting: 16MiB # image bodies of its jobs not yet ended; 0: no limit
//
// A key without a quota field gets its default (MaxJobsInFlightDefault, MaxJobsWaitingDefault,
// MaxImageBytesWaitingDefault); a key without rateLimit has no rate limit. maxImageBytesWaiting
// is a number of bytes, or one with a unit: KiB, MiB or GiB.
//
// It refuses unknown fields, a missing or repeated name, a key given both ways or neither, a
// short key, a bad digest, the same key twice, a bad queue name, a rate limit that is not a
// positive number, a lifetime that is not a duration from MinLifetime to MaxLifetime, a quota
// that is not a whole number from 0 to its bound and a short callbackSecret, with a *KeysError
// naming the file and line. It never panics.
func ParseKeys(name string, data []byte) (*Keys, error) {
	if name == "" {
		name = "keys"
	}
	root, err := yamlfile.Decode(name, "keys file", data, maxKeysFileBytes)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &KeysError{File: name, Msg: "the file is empty: want keys: [{name, key or sha256, queue}, ...]"}
	}
	p := keysParser{file: name, names: map[string]int{}, digests: map[[sha256.Size]byte]int{}, secrets: map[string]string{}}
	return p.root(root)
}

type keysParser struct {
	file    string
	names   map[string]int
	digests map[[sha256.Size]byte]int
	secrets map[string]string
}

func (p *keysParser) fail(n *yaml.Node, format string, args ...any) error {
	return yamlfile.Errorf(p.file, n, format, args...)
}

// pairs returns the keys and values of mapping n, refusing non-scalar and repeated keys.
func (p *keysParser) pairs(n *yaml.Node, what string) ([][2]*yaml.Node, error) {
	var out [][2]*yaml.Node
	err := yamlfile.Each(p.file, n, what, func(k, v *yaml.Node) error {
		out = append(out, [2]*yaml.Node{k, v})
		return nil
	})
	return out, err
}

func (p *keysParser) root(n *yaml.Node) (*Keys, error) {
	pairs, err := p.pairs(n, "the file")
	if err != nil {
		return nil, err
	}
	var list *yaml.Node
	for _, kv := range pairs {
		if kv[0].Value != "keys" {
			return nil, p.fail(kv[0], "%q is not a keys file field (want keys)", kv[0].Value)
		}
		list = kv[1]
	}
	if list == nil {
		return nil, p.fail(n, "want keys: [{name, key or sha256, queue}, ...]")
	}
	if list.Kind != yaml.SequenceNode {
		return nil, p.fail(list, "keys: want a list of {name, key or sha256, queue}, got %s", yamlfile.Describe(list))
	}
	if len(list.Content) == 0 {
		return nil, p.fail(list, "keys: the list is empty; a gateway with no key would refuse every request")
	}
	out := &Keys{secrets: p.secrets}
	for _, item := range list.Content {
		k, err := p.key(item)
		if err != nil {
			return nil, err
		}
		out.list = append(out.list, k)
	}
	return out, nil
}

func (p *keysParser) key(n *yaml.Node) (Key, error) {
	pairs, err := p.pairs(n, "a key")
	if err != nil {
		return Key{}, err
	}
	k := Key{Lifetime: LifetimeDefault, MaxJobsInFlight: MaxJobsInFlightDefault, MaxJobsWaiting: MaxJobsWaitingDefault,
		MaxImageBytesWaiting: MaxImageBytesWaitingDefault}
	var clear, digest, secret *yaml.Node
	for _, kv := range pairs {
		field, v := kv[0], kv[1]
		numeric := field.Value == "rateLimit" || field.Value == "maxJobsInFlight" || field.Value == "maxJobsWaiting" ||
			field.Value == "maxImageBytesWaiting"
		if !numeric && (v.Kind != yaml.ScalarNode || v.Tag == "!!null") {
			return Key{}, p.fail(v, "%s: want a string, got %s", field.Value, yamlfile.Describe(v))
		}
		switch field.Value {
		case "name":
			if !keyNamePattern.MatchString(v.Value) {
				return Key{}, p.fail(v, "name %q: want 1-64 of letters, digits, '_', '.' or '-'", v.Value)
			}
			if line, dup := p.names[v.Value]; dup {
				return Key{}, p.fail(v, "name %q is used twice (first on line %d)", v.Value, line)
			}
			p.names[v.Value] = v.Line
			k.Name = v.Value
		case "key":
			clear = v
		case "sha256":
			digest = v
		case "queue":
			if !queuereg.ValidName(v.Value) {
				return Key{}, p.fail(v, "queue %q: want 1-64 of letters, digits, '_', '.', ':' or '-'", v.Value)
			}
			k.Queue = v.Value
		case "rateLimit":
			r, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || err != nil || math.IsNaN(r) || r <= 0 || r > maxRateLimit {
				return Key{}, p.fail(v, "rateLimit: want requests per second, a number above 0 and at most %d, got %s", maxRateLimit, yamlfile.Describe(v))
			}
			k.RateLimit = r
		case "callbackSecret":
			secret = v
		case "lifetime":
			d, err := time.ParseDuration(v.Value)
			if err != nil || d < MinLifetime || d > MaxLifetime {
				return Key{}, p.fail(v, "lifetime: want a duration from %s to %s such as 5m, got %q", MinLifetime, MaxLifetime, v.Value)
			}
			k.Lifetime = d
		case "maxJobsInFlight", "maxJobsWaiting":
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if v.Kind != yaml.ScalarNode || err != nil || n < 0 || n > maxQuotaJobs {
				return Key{}, p.fail(v, "%s: want a whole number of jobs from 0 (no limit) to %d, got %s", field.Value, maxQuotaJobs, yamlfile.Describe(v))
			}
			if field.Value == "maxJobsInFlight" {
				k.MaxJobsInFlight = n
			} else {
				k.MaxJobsWaiting = n
			}
		case "maxImageBytesWaiting":
			n, ok := parseBytes(v.Value)
			if v.Kind != yaml.ScalarNode || !ok || n > maxQuotaBytes {
				return Key{}, p.fail(v, "maxImageBytesWaiting: want a whole number of bytes from 0 (no limit) to 1024GiB, with an optional unit KiB, MiB or GiB such as 64MiB, got %s", yamlfile.Describe(v))
			}
			k.MaxImageBytesWaiting = n
		default:
			return Key{}, p.fail(field, "%q is not a key field (want name, key or sha256, queue, rateLimit, lifetime, "+
				"maxJobsInFlight, maxJobsWaiting, maxImageBytesWaiting, callbackSecret)", field.Value)
		}
	}
	switch {
	case k.Name == "":
		return Key{}, p.fail(n, "a key needs a name")
	case k.Queue == "":
		return Key{}, p.fail(n, "key %q needs a queue", k.Name)
	case clear != nil && digest != nil:
		return Key{}, p.fail(digest, "key %q: give key or sha256, not both", k.Name)
	case clear != nil:
		if len(clear.Value) < MinKeyLength {
			// Never quote the key: this message goes to a log.
			return Key{}, p.fail(clear, "key %q: the key is %d characters; at least %d random ones (e.g. openssl rand -hex 24)",
				k.Name, len(clear.Value), MinKeyLength)
		}
		k.digest = sha256.Sum256([]byte(clear.Value))
	case digest != nil:
		raw, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(digest.Value)))
		if err != nil || len(raw) != sha256.Size {
			return Key{}, p.fail(digest, "key %q: sha256 must be 64 hex digits (echo -n KEY | sha256sum)", k.Name)
		}
		copy(k.digest[:], raw)
	default:
		return Key{}, p.fail(n, "key %q needs key (in clear) or sha256 (its SHA-256 in hex)", k.Name)
	}
	if line, dup := p.digests[k.digest]; dup {
		return Key{}, p.fail(n, "key %q is the same key as the one on line %d", k.Name, line)
	}
	p.digests[k.digest] = n.Line
	if secret != nil {
		if len(secret.Value) < MinKeyLength { // never quoted: this message goes to a log
			return Key{}, p.fail(secret, "key %q: the callbackSecret is %d characters; at least %d random ones (e.g. openssl rand -hex 32)",
				k.Name, len(secret.Value), MinKeyLength)
		}
		p.secrets[k.Name] = secret.Value
	}
	return k, nil
}

// parseBytes reads a whole number of bytes, with an optional unit KiB, MiB or GiB ("64MiB",
// "64 MiB", "1048576").
func parseBytes(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for unit, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if rest, ok := strings.CutSuffix(s, unit); ok {
			s, mult = strings.TrimSpace(rest), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, false
	}
	return n * mult, true
}
