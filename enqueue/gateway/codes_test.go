package gateway_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// TestCodeTableCoversEveryCode: every AnySolver seed code, every code of solvequeue's own an
// outcome can carry, and every code the gateway answers has exactly one row, and every row
// names a 2captcha answer.
func TestCodeTableCoversEveryCode(t *testing.T) {
	t.Parallel()
	rows := map[gateway.Origin]map[string]gateway.CodeRow{}
	for _, r := range gateway.CodeTable() {
		if rows[r.Origin] == nil {
			rows[r.Origin] = map[string]gateway.CodeRow{}
		}
		_, dup := rows[r.Origin][r.Code]
		require.False(t, dup, "%s %s has two rows", r.Origin, r.Code)
		rows[r.Origin][r.Code] = r
		require.True(t, strings.HasPrefix(r.TwoCaptcha, "ERROR_"), "%s %s: 2captcha's answer %q", r.Origin, r.Code, r.TwoCaptcha)
		require.True(t, r.Dialect == "" || strings.HasPrefix(r.Dialect, "ERROR_"), "%s %s: dialect %q", r.Origin, r.Code, r.Dialect)
	}
	seed := classify.SeedCodes()
	require.Len(t, seed, 36)
	for _, c := range seed {
		require.Contains(t, rows[gateway.OriginAnySolver], c.ErrorCode, "AnySolver's %s has no row", c.ErrorCode)
	}
	require.Len(t, rows[gateway.OriginAnySolver], len(seed), "a row for a code AnySolver does not have")
	own := append(classify.OwnCodes(), classify.CodeTimeout, classify.CodeConnection, classify.CodeBadResponse,
		classify.CodeResponseTooLarge, classify.CodeHTTP429, classify.CodeHTTP5xx, classify.CodeHTTP4xx, classify.CodeHTTPUnexpected)
	for _, c := range own {
		require.Contains(t, rows[gateway.OriginSolvequeue], c, "solvequeue's %s has no row", c)
	}
	for _, c := range []string{gateway.CodeKeyDoesNotExist, gateway.CodeZeroBalance, gateway.CodeInvalidTaskData, gateway.CodeInvalidWebsite,
		gateway.CodeInvalidSitekey, gateway.CodeImageCorrupted, gateway.CodeImageTooLarge, gateway.CodeTaskNotFound,
		gateway.CodeRateLimited, gateway.CodeInternalError, gateway.CodeNoSuchMethod, gateway.CodeMethodNotAllowed} {
		require.Contains(t, rows[gateway.OriginGateway], c, "the gateway's %s has no row", c)
	}
	// The operator's AnySolver account is never the client's: no account code from AnySolver
	// reaches a client as a code about its own key or balance, on either protocol.
	for _, c := range []string{classify.CodeKeyDoesNotExist, classify.CodeZeroBalance, classify.CodeUserBanned} {
		r := rows[gateway.OriginAnySolver][c]
		for _, answer := range []string{r.Dialect, r.TwoCaptcha} {
			require.Equal(t, "ERROR_NO_SLOT_AVAILABLE", answer, "AnySolver's %s", c)
		}
	}
}

// TestCodeTableInDocs: docs/gateway.md shows the table exactly as the code has it.
func TestCodeTableInDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/gateway.md")
	require.NoError(t, err)
	require.True(t, strings.Contains(string(doc), gateway.CodeTableMarkdown()),
		"docs/gateway.md's code table differs from gateway.CodeTable; it must read:\n%s", gateway.CodeTableMarkdown())
}
