package classify

// providerScoped lists the codes that blame the provider AnySolver routed the task to, not the
// job: another provider may well solve it.
var providerScoped = map[string]bool{
	"NO_PROVIDERS_AVAILABLE":        true,
	"PROVIDER_UNREACHABLE":          true,
	"PROVIDER_TASK_NOT_SUPPORTED":   true,
	"PROVIDER_RATE_LIMITED":         true,
	"PROVIDER_GLOBAL_LIMIT_REACHED": true,
	"PROVIDER_RESPONSE_MALFORMED":   true,
	"PROVIDER_BALANCE_ERROR":        true,
	"UNKNOWN_PROVIDER_ERROR":        true,
}

// ProviderScoped reports whether code blames the provider rather than the job, so that a job
// naming several providers tries the next one at once.
func ProviderScoped(code string) bool { return providerScoped[canonicalCode(code)] }
