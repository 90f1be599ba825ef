package anysolver

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTaskID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		text    string
		numeric bool
		wantErr bool
	}{
		{`"abc-123"`, "abc-123", false, false},
		{`"123"`, "123", false, false},
		{`123`, "123", true, false},
		{` 42 `, "42", true, false},
		{`-7`, "-7", true, false},
		{`18446744073709551616`, "18446744073709551616", true, false},
		{`"\u00e9"`, "é", false, false},
		{``, "", false, true},
		{`""`, "", false, true},
		{`null`, "", false, true},
		{`{}`, "", false, true},
		{`[1]`, "", false, true},
		{`true`, "", false, true},
		{`12a`, "", false, true},
		{`"abc`, "", false, true},
		{`-`, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			id, err := ParseTaskID(json.RawMessage(tt.raw))
			if tt.wantErr {
				require.Error(t, err)
				require.True(t, id.IsZero())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.text, id.String())
			require.Equal(t, tt.numeric, id.IsNumeric())
			require.False(t, id.IsZero())

			b, err := json.Marshal(struct{ ID TaskID }{id})
			require.NoError(t, err)
			var back struct{ ID TaskID }
			require.NoError(t, json.Unmarshal(b, &back))
			require.Equal(t, id, back.ID)
		})
	}

	var zero TaskID
	require.True(t, zero.IsZero())
	b, err := json.Marshal(zero)
	require.NoError(t, err)
	require.Equal(t, "null", string(b))
	require.NoError(t, json.Unmarshal([]byte("null"), &zero))
	require.True(t, zero.IsZero())
	require.Error(t, json.Unmarshal([]byte(`{}`), &zero))
}
