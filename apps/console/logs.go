package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Logs finds the log lines every app wrote for one trace, in the log files
// `dapr run` writes (self-hosted mode has no log API): the sidecar's metadata
// names the app's file (extended "appLogPath", which the Dapr CLI sets);
// otherwise the newest <app dir>/.dapr/logs/*_app_*.log.
type Logs struct {
	MaxBytes int64 // how much of the end of each file is searched
}

// LogLine is one JSON log line of an app.
type LogLine struct {
	App   string
	Time  time.Time
	Level string
	Msg   string
	Raw   string
}

// File returns the app's log file, or "" when none is known.
func (l *Logs) File(a App, md Metadata) string {
	if p := md.Extended["appLogPath"]; p != "" {
		return p
	}
	if a.Dir == "" {
		return ""
	}
	files, _ := filepath.Glob(filepath.Join(a.Dir, ".dapr", "logs", "*_app_*.log"))
	var newest string
	var newestTime time.Time
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(newestTime) {
			newest, newestTime = f, st.ModTime()
		}
	}
	return newest
}

// ForTrace returns the lines of file that carry the trace id.
func (l *Logs) ForTrace(app, file, traceID string) []LogLine {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > l.MaxBytes {
		_, _ = f.Seek(-l.MaxBytes, io.SeekEnd)
	}
	needle := []byte(`"trace_id":"` + traceID + `"`)
	var out []LogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, needle) {
			continue
		}
		var e struct {
			Time  time.Time `json:"time"`
			Level string    `json:"level"`
			Msg   string    `json:"msg"`
		}
		_ = json.Unmarshal(line, &e)
		out = append(out, LogLine{App: app, Time: e.Time, Level: e.Level, Msg: e.Msg, Raw: string(line)})
	}
	return out
}

// SortLines orders lines by time.
func SortLines(lines []LogLine) {
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
}
