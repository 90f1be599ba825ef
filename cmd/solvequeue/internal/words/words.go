// Package words spells the counts in the command's messages, so that every command says
// "1 job" and "3 jobs" the same way.
package words

import "fmt"

// Plural is n and word, with an "s" unless n is 1: "1 dead letter", "3 dead letters".
func Plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
