// Package enqueue is the producer's side of solvequeue: the Job a producer submits, its
// validation, the Client that puts jobs on the asynq queue and reads their outcomes back.
//
// It owns the wire format shared with the worker (Payload, Record) but never imports the
// worker: a producer binary links Redis and asynq, not the AnySolver client.
package enqueue
