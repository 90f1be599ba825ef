package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

const (
	alphaKey = "gk-alpha-5f0c2b9e7d1a4c8e"
	betaKey  = "gk-beta-93d1e0aa4b7c2f65"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	file := "keys:\n" +
		"  - name: alpha\n" +
		"    key: " + alphaKey + "\n" +
		"    queue: alpha\n" +
		"  - name: beta\n" +
		"    sha256: " + strings.ToUpper(sha(betaKey)) + "\n" +
		"    queue: beta\n" +
		"    rateLimit: 2.5\n" +
		"    lifetime: 90s\n" +
		"    callbackSecret: cb-beta-0f3e9a71c2d4\n" +
		"  - name: gamma\n" +
		"    key: " + gammaKey + "\n" +
		"    queue: gamma\n" +
		"    maxJobsInFlight: 0\n" +
		"    maxJobsWaiting: 5\n" +
		"    maxImageBytesWaiting: 16 MiB\n"
	keys, err := gateway.ParseKeys("keys.yaml", []byte(file))
	require.NoError(t, err)
	require.Equal(t, []string{"alpha", "beta", "gamma"}, keys.Names())
	require.Equal(t, map[string]string{"beta": "cb-beta-0f3e9a71c2d4"}, keys.CallbackSecrets(),
		"a key with a callbackSecret has it; one without has none")
	keys.CallbackSecrets()["alpha"] = "changed"
	require.NotContains(t, keys.CallbackSecrets(), "alpha", "the map is the caller's copy")

	k, ok := keys.Lookup(alphaKey)
	require.True(t, ok)
	require.Equal(t, gateway.Key{Name: "alpha", Queue: "alpha", Lifetime: gateway.LifetimeDefault,
		MaxJobsInFlight: 1000, MaxJobsWaiting: 1000, MaxImageBytesWaiting: 64 << 20}, withoutDigest(k),
		"a key without a lifetime or quotas has the defaults")
	k, ok = keys.Lookup(betaKey)
	require.True(t, ok, "a key given as its SHA-256 (any case) is found by the key itself")
	require.Equal(t, "beta", k.Name)
	require.Equal(t, 2.5, k.RateLimit)
	require.Equal(t, 90*time.Second, k.Lifetime)
	k, ok = keys.Lookup(gammaKey)
	require.True(t, ok)
	require.Equal(t, gateway.Key{Name: "gamma", Queue: "gamma", Lifetime: gateway.LifetimeDefault,
		MaxJobsInFlight: 0, MaxJobsWaiting: 5, MaxImageBytesWaiting: 16 << 20}, withoutDigest(k), "0 is no limit")

	for _, wrong := range []string{"", alphaKey + " ", alphaKey[:len(alphaKey)-1], sha(alphaKey), "alpha"} {
		_, ok := keys.Lookup(wrong)
		require.False(t, ok, "%q is not a key", wrong)
	}

	// JSON is YAML.
	keys, err = gateway.ParseKeys("keys.json", []byte(`{"keys":[{"name":"j","key":"`+alphaKey+`","queue":"default"}]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"j"}, keys.Names())
}

func withoutDigest(k gateway.Key) gateway.Key {
	return gateway.Key{Name: k.Name, Queue: k.Queue, RateLimit: k.RateLimit, Lifetime: k.Lifetime,
		MaxJobsInFlight: k.MaxJobsInFlight, MaxJobsWaiting: k.MaxJobsWaiting, MaxImageBytesWaiting: k.MaxImageBytesWaiting}
}

func TestParseKeysRefusesNamingTheLine(t *testing.T) {
	t.Parallel()
	good := "    key: " + alphaKey + "\n    queue: q\n"
	tests := []struct {
		name, file string
		line       int
		want       string
	}{
		{"empty file", "", 0, "the file is empty"},
		{"no keys field", "other: 1\n", 1, `"other" is not a keys file field`},
		{"keys not a list", "keys: alpha\n", 1, "want a list"},
		{"empty list", "keys: []\n", 1, "the list is empty"},
		{"item not a mapping", "keys:\n  - alpha\n", 2, "want a mapping"},
		{"no name", "keys:\n  - queue: q\n    key: " + alphaKey + "\n", 2, "needs a name"},
		{"bad name", "keys:\n  - name: al pha\n" + good, 2, "want 1-64 of letters"},
		{"name twice", "keys:\n  - name: a\n" + good + "  - name: a\n    key: " + betaKey + "\n    queue: q\n", 5, `"a" is used twice (first on line 2)`},
		{"no queue", "keys:\n  - name: a\n    key: " + alphaKey + "\n", 2, `key "a" needs a queue`},
		{"bad queue", "keys:\n  - name: a\n    key: " + alphaKey + "\n    queue: a{b}\n", 4, `queue "a{b}"`},
		{"neither key nor sha256", "keys:\n  - name: a\n    queue: q\n", 2, "needs key (in clear) or sha256"},
		{"both key and sha256", "keys:\n  - name: a\n" + good + "    sha256: " + sha(alphaKey) + "\n", 5, "not both"},
		{"short key", "keys:\n  - name: a\n    key: short\n    queue: q\n", 3, "at least 16"},
		{"bad sha256", "keys:\n  - name: a\n    sha256: abc\n    queue: q\n", 3, "64 hex digits"},
		{"same key twice", "keys:\n  - name: a\n" + good + "  - name: b\n    sha256: " + sha(alphaKey) + "\n    queue: q\n", 5, "same key as the one on line 2"},
		{"unknown field", "keys:\n  - name: a\n" + good + "    rate: 5\n", 5, `"rate" is not a key field`},
		{"rateLimit zero", "keys:\n  - name: a\n" + good + "    rateLimit: 0\n", 5, "rateLimit"},
		{"rateLimit text", "keys:\n  - name: a\n" + good + "    rateLimit: fast\n", 5, "rateLimit"},
		{"rateLimit list", "keys:\n  - name: a\n" + good + "    rateLimit: [1]\n", 5, "rateLimit"},
		{"lifetime not a duration", "keys:\n  - name: a\n" + good + "    lifetime: soon\n", 5, "lifetime: want a duration from 10s to 24h0m0s"},
		{"lifetime too short", "keys:\n  - name: a\n" + good + "    lifetime: 1s\n", 5, "lifetime"},
		{"lifetime too long", "keys:\n  - name: a\n" + good + "    lifetime: 48h\n", 5, "lifetime"},
		{"lifetime a number", "keys:\n  - name: a\n" + good + "    lifetime: 300\n", 5, "lifetime"},
		{"short callbackSecret", "keys:\n  - name: a\n" + good + "    callbackSecret: short\n", 5, "callbackSecret is 5 characters; at least 16"},
		{"callbackSecret a list", "keys:\n  - name: a\n" + good + "    callbackSecret: [x]\n", 5, "callbackSecret: want a string"},
		{"maxJobsInFlight negative", "keys:\n  - name: a\n" + good + "    maxJobsInFlight: -1\n", 5, "maxJobsInFlight: want a whole number of jobs from 0 (no limit)"},
		{"maxJobsInFlight a fraction", "keys:\n  - name: a\n" + good + "    maxJobsInFlight: 2.5\n", 5, "maxJobsInFlight"},
		{"maxJobsInFlight text", "keys:\n  - name: a\n" + good + "    maxJobsInFlight: many\n", 5, `got "many"`},
		{"maxJobsInFlight empty", "keys:\n  - name: a\n" + good + "    maxJobsInFlight:\n", 5, "got nothing"},
		{"maxJobsWaiting a list", "keys:\n  - name: a\n" + good + "    maxJobsWaiting: [1]\n", 5, "maxJobsWaiting: want a whole number of jobs from 0 (no limit) to 10000000, got a list"},
		{"maxJobsWaiting too large", "keys:\n  - name: a\n" + good + "    maxJobsWaiting: 10000001\n", 5, "maxJobsWaiting"},
		{"maxImageBytesWaiting an unknown unit", "keys:\n  - name: a\n" + good + "    maxImageBytesWaiting: 64MB\n", 5, "maxImageBytesWaiting: want a whole number of bytes"},
		{"maxImageBytesWaiting negative", "keys:\n  - name: a\n" + good + "    maxImageBytesWaiting: -1KiB\n", 5, "maxImageBytesWaiting"},
		{"maxImageBytesWaiting too large", "keys:\n  - name: a\n" + good + "    maxImageBytesWaiting: 1025GiB\n", 5, "maxImageBytesWaiting"},
		{"maxImageBytesWaiting a mapping", "keys:\n  - name: a\n" + good + "    maxImageBytesWaiting: {a: 1}\n", 5, "got a mapping"},
		{"key a mapping", "keys:\n  - name: a\n    key: {x: 1}\n    queue: q\n", 3, "key: want a string"},
		{"field twice", "keys:\n  - name: a\n" + good + "    queue: r\n", 5, `"queue" is set twice`},
		{"bad YAML", "keys:\n  - name: [\n", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := gateway.ParseKeys("keys.yaml", []byte(tt.file))
			var kerr *gateway.KeysError
			require.ErrorAs(t, err, &kerr)
			require.Equal(t, "keys.yaml", kerr.File)
			require.Equal(t, tt.line, kerr.Line, "error: %v", err)
			require.Contains(t, kerr.Msg, tt.want)
			require.NotContains(t, err.Error(), alphaKey, "a key never appears in an error")
			require.NotContains(t, err.Error(), "short\"", "a key never appears in an error")
		})
	}
}

func TestLoadKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	require.NoError(t, os.WriteFile(path, []byte("keys:\n  - name: a\n    key: "+alphaKey+"\n    queue: q\n"), 0o600))
	keys, err := gateway.LoadKeys(path)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, keys.Names())

	_, err = gateway.LoadKeys(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, os.WriteFile(path, []byte("keys:\n  - name: a\n    key: x\n    queue: q\n"), 0o600))
	_, err = gateway.LoadKeys(path)
	require.ErrorContains(t, err, path+": line 3:")
}

// FuzzParseKeys checks that no keys file panics the parser, and that an accepted one has a
// name and a queue for every key.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("keys:\n  - name: a\n    key: " + alphaKey + "\n    queue: q\n    rateLimit: 5\n"))
	f.Add([]byte("keys:\n  - name: a\n    key: " + alphaKey + "\n    queue: q\n    maxJobsInFlight: 0\n    maxImageBytesWaiting: 2 GiB\n"))
	f.Add([]byte("keys:\n  - &a {name: a, sha256: " + sha(alphaKey) + ", queue: q}\n  - *a\n"))
	f.Add([]byte(`{"keys":[{"name":"j","key":"` + alphaKey + `","queue":"default"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := gateway.ParseKeys("fuzz.yaml", data)
		if err != nil {
			return
		}
		require.NotEmpty(t, keys.Names())
	})
}
