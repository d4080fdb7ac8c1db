package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"app/internal/config"
)

func TestEveryLineSaysWhoWroteIt(t *testing.T) {
	var buf bytes.Buffer
	log := NewTo(&buf, config.Config{LogFormat: "json", LogLevel: "info"}, "worker", "3")
	log.Info().Msg("hello")
	log.Debug().Msg("below the level")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if line["role"] != "worker" || line["worker"] != "3" || line["pid"] != float64(os.Getpid()) || line["message"] != "hello" || line["time"] == nil {
		t.Fatalf("line %v lacks role, worker, pid, time or message", line)
	}
}

func TestConsoleFormatIsReadable(t *testing.T) {
	var buf bytes.Buffer
	log := NewTo(&buf, config.Config{LogFormat: "console", LogLevel: "debug"}, "primary", "")
	log.Debug().Msg("primary started (pid 1)")
	out := buf.String()
	if strings.HasPrefix(out, "{") || !strings.Contains(out, "primary started (pid 1)") || !strings.Contains(out, "role=") {
		t.Fatalf("console line %q", out)
	}
	if strings.Contains(out, "worker=") {
		t.Fatalf("a primary's line names a worker: %q", out)
	}
}
