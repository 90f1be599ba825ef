// Package worker runs solve jobs: the asynq server, the handler that creates and polls
// AnySolver tasks, the outcome of every job, the account breaker and the dead-letter record.
//
// It does not decide what an AnySolver error means (package classify does) nor speak HTTP
// (package worker/anysolver does); it turns their answers into asynq's retry, archive and result.
package worker
