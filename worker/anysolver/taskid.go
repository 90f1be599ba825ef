package anysolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// TaskID is AnySolver's id for a remote task: a JSON string or a JSON number.
//
// It goes back to AnySolver in the JSON kind it came in (a number stays a
// number, digits exactly as received), so store it with MarshalJSON, not as
// String(). The zero value means "no task" and marshals as null.
type TaskID struct {
	text    string
	numeric bool
}

// ParseTaskID reads a taskId as it appears in an answer: a non-empty JSON
// string or a JSON number. Anything else (null, "", an object) is an error.
func ParseTaskID(raw json.RawMessage) (TaskID, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return TaskID{}, errors.New("taskId is missing")
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return TaskID{}, fmt.Errorf("taskId is not a valid JSON string: %w", err)
		}
		if s == "" {
			return TaskID{}, errors.New("taskId is an empty string")
		}
		return TaskID{text: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		if !json.Valid(raw) { // a leading digit or '-' and valid JSON: one number
			return TaskID{}, errors.New("taskId is not a valid JSON number")
		}
		return TaskID{text: string(raw), numeric: true}, nil
	default:
		return TaskID{}, errors.New("taskId must be a JSON string or number")
	}
}

// String returns the id's text: the string's content, or the number's digits.
func (id TaskID) String() string { return id.text }

// IsZero reports whether id is the zero TaskID, "no task".
func (id TaskID) IsZero() bool { return id.text == "" }

// IsNumeric reports whether AnySolver sent the id as a JSON number.
func (id TaskID) IsNumeric() bool { return id.numeric }

// MarshalJSON writes the id in the JSON kind it came in; the zero id is null.
func (id TaskID) MarshalJSON() ([]byte, error) {
	switch {
	case id.text == "":
		return []byte("null"), nil
	case id.numeric:
		return []byte(id.text), nil
	default:
		return json.Marshal(id.text)
	}
}

// UnmarshalJSON reads what MarshalJSON wrote; null gives the zero id.
func (id *TaskID) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		*id = TaskID{}
		return nil
	}
	parsed, err := ParseTaskID(data)
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}
