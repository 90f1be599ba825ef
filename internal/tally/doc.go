// Package tally adds up, per queue and minute, the jobs that ended (by state and code, with
// their createTask calls and cost) and per provider the createTask results, writes the sums to
// Redis every few seconds and reads them back for the web console's overview (Read).
//
// The tally is for people to look at: nothing in the worker decides anything from it.
package tally
