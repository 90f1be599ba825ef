// Package breaker holds the two circuit breakers shared in Redis by every worker: the account
// breaker (an AnySolver account error pauses the job queues until a probe finds the account works
// again) and the provider breakers (a provider that keeps failing is skipped for a cool-down).
//
// It does not decide which errors are account or provider errors (package classify does) nor
// what becomes of the job that met one (the attempt machine does).
package breaker
