// Package enqueue is the producer's side of solvequeue: the Job a producer submits, its
// validation, batch files of jobs, and the Client that puts jobs on the asynq queue (Submit,
// SubmitMany) and reads their outcomes back (Status, Wait).
//
// It never imports the worker: a producer binary links Redis and asynq, not the AnySolver
// client. The operator's actions (dead letters, failed jobs, the balance) are package
// enqueue/admin; the HTTP front for other languages is enqueue/gateway.
package enqueue
