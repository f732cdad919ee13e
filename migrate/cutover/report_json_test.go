package cutover

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The report's durations are strings in JSON, as every duration rekey
// prints, and the JSON reads back into the same report.
func TestReportJSONDurations(t *testing.T) {
	b, err := json.Marshal(Report{Drained: 3, QuietFor: 2100 * time.Millisecond, Recorded: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"quietFor":"2.1s"`) || !strings.Contains(s, `"drained":3`) || strings.Count(s, "quietFor") != 1 {
		t.Errorf("report JSON %s", s)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.QuietFor != 2100*time.Millisecond || back.Drained != 3 || !back.Recorded {
		t.Errorf("read back %s: %+v %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`{"quietFor":"soon"}`), &back); err == nil {
		t.Error("a quietFor that is no duration was read")
	}
}
