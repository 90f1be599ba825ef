package gateway_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

func TestForbiddenCallbackAddr(t *testing.T) {
	t.Parallel()
	for addr, forbidden := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "::ffff:127.0.0.1": true,
		"10.1.2.3": true, "172.16.0.1": true, "172.31.255.255": true, "192.168.1.1": true, "fd12::1": true,
		"169.254.169.254": true, "fe80::1": true, "100.64.0.1": true, "0.0.0.0": true, "::": true,
		"224.0.0.1": true, "ff02::1": true, "::ffff:10.0.0.1": true, "::ffff:169.254.169.254": true,
		"93.184.216.34": false, "8.8.8.8": false, "172.32.0.1": false, "100.128.0.1": false, "2606:4700::1111": false,
	} {
		require.Equal(t, forbidden, gateway.ForbiddenCallbackAddr(netip.MustParseAddr(addr)), addr)
	}
	require.True(t, gateway.ForbiddenCallbackAddr(netip.Addr{}), "no address is no address to call")
}

func TestCallbackAllowPrivate(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	body := map[string]any{"clientKey": gammaKey, "task": recaptchaTask("k"), "callbackUrl": "http://10.0.0.7:9000/cb"}
	requireError(t, b.call(t, "createTask", body), 1, gateway.CodeInvalidTaskData)

	allowing, err := gateway.NewHandler(gateway.Config{Client: b.client, Redis: b.rc, Keys: mustKeys(t), CallbackAllowPrivate: true})
	require.NoError(t, err)
	b2 := *b
	b2.url = startHTTP(t, allowing)
	taskID(t, b2.call(t, "createTask", body))
	requirePending(t, b, "gamma", 1)
}

// TestHostAddr: a host written as an address in any form a resolver reads (inet_aton's decimal,
// octal, hex and short dotted forms, IPv6 with an embedded IPv4) is that address; a name is none.
func TestHostAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ host, want string }{
		{"127.0.0.1", "127.0.0.1"}, {"2130706433", "127.0.0.1"}, {"0x7f000001", "127.0.0.1"},
		{"0x7f.0.0.1", "127.0.0.1"}, {"0X7F.0.0.1", "127.0.0.1"}, {"0177.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"}, {"127.0.1", "127.0.0.1"}, {"0", "0.0.0.0"}, {"017700000001", "127.0.0.1"},
		{"10.0x10203", "10.1.2.3"}, {"169.254.43518", "169.254.169.254"}, {"127.0.0.1.", "127.0.0.1"},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1"}, {"64:ff9b::7f00:1", "64:ff9b::7f00:1"},
		{"example.com", ""}, {"256.0.0.1", ""}, {"1.2.3.4.5", ""}, {"127.0.0.0x", "127.0.0.0"},
		{"08.0.0.1", ""}, {"1.2.3.256", ""}, {"1.2.65536", ""}, {"4294967296", ""}, {"-1", ""}, {"0x7g", ""},
		{"", ""}, {"1..2", ""}, {"a.b.c.d", ""}, {"+1.2.3.4", ""},
	} {
		addr, ok := gateway.HostAddr(tc.host)
		if tc.want == "" {
			require.False(t, ok, "%q is a name, read as %s", tc.host, addr)
			continue
		}
		require.True(t, ok, tc.host)
		require.Equal(t, tc.want, addr.String(), tc.host)
	}
}

// TestCallbackHostForms: createTask refuses a callbackUrl whose host denotes a loopback, private,
// link-local or unspecified address in any written form, IPv4-mapped and NAT64 embeddings
// included, and queues nothing; public addresses and names pass.
func TestCallbackHostForms(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	for _, tc := range []struct {
		host    string
		refused bool
	}{
		{"2130706433", true}, {"0x7f.0.0.1", true}, {"127.1", true}, {"0177.0.0.1", true},
		{"[::ffff:127.0.0.1]", true}, {"[64:ff9b::7f00:1]", true}, {"[64:ff9b::a9fe:a9fe]", true},
		{"[64:ff9b:1::a00:1]", true}, {"0", true}, {"0x0", true}, {"10.1", true}, {"3232235777", true},
		{"169.254.43518", true}, {"[::ffff:a9fe:a9fe]", true}, {"0x7f.1.", true}, {"[::]", true},
		{"93.184.216.34", false}, {"1572395042", false}, {"[64:ff9b::5db8:d822]", false}, {"callbacks.example.com", false},
	} {
		body := map[string]any{"clientKey": gammaKey, "task": recaptchaTask("k"), "callbackUrl": "http://" + tc.host + ":9000/cb"}
		if tc.refused {
			requireError(t, b.call(t, "createTask", body), 1, gateway.CodeInvalidTaskData)
			continue
		}
		taskID(t, b.call(t, "createTask", body))
	}
	requirePending(t, b, "gamma", 4)
}
