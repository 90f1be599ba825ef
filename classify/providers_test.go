package classify_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

func TestProviderScoped(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"NO_PROVIDERS_AVAILABLE", "PROVIDER_UNREACHABLE", "PROVIDER_TASK_NOT_SUPPORTED",
		"PROVIDER_RATE_LIMITED", "PROVIDER_GLOBAL_LIMIT_REACHED", "PROVIDER_RESPONSE_MALFORMED", "PROVIDER_BALANCE_ERROR",
		"UNKNOWN_PROVIDER_ERROR", " provider_unreachable "} {
		require.True(t, classify.ProviderScoped(code), code)
	}
	for _, code := range []string{"DOMAIN_BANNED", "ERROR_ZERO_BALANCE", "SERVICE_UNAVAILABLE", "PROVIDER_BALANCE_NOT_SUPPORTED", ""} {
		require.False(t, classify.ProviderScoped(code), code)
	}
}
