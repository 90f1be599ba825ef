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
