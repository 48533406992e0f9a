// Package events is what the apps that consume pub/sub events share: the
// CloudEvent envelope Dapr delivers, and the answer that tells Dapr what to
// do with the event.
package events

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// CloudEvent is the envelope Dapr delivers events in.
type CloudEvent struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Topic           string          `json:"topic"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// DecodeData unmarshals the event's data into v. A publisher may have sent
// the JSON document itself or a JSON string holding it; both are read.
func (ce CloudEvent) DecodeData(v any) error {
	data := []byte(ce.Data)
	var s string
	if json.Unmarshal(data, &s) == nil {
		data = []byte(s)
	}
	return json.Unmarshal(data, v)
}

// Read reads a delivered CloudEvent. Unlike client requests, events may carry
// fields an app does not know: only the size is limited. raw is what was read,
// also when it is not a CloudEvent.
func Read(w http.ResponseWriter, r *http.Request) (raw []byte, ce CloudEvent, err error) {
	raw, err = io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBodyBytes))
	if err != nil {
		return raw, CloudEvent{}, err
	}
	err = json.Unmarshal(raw, &ce)
	return raw, ce, err
}

// Outcome tells Dapr what to do with a delivered event.
type Outcome string

// The outcomes Dapr's pub/sub understands.
const (
	Success Outcome = "SUCCESS" // handled (or handled before): acknowledge
	Retry   Outcome = "RETRY"   // a temporary failure: deliver again later
	Drop    Outcome = "DROP"    // can never be handled: to the dead-letter topic
)

// Respond tells Dapr the outcome. A retry is also signalled with a 500 so
// that any broker integration treats it as a failure.
func Respond(w http.ResponseWriter, o Outcome) {
	status := http.StatusOK
	if o == Retry {
		status = http.StatusInternalServerError
	}
	api.WriteJSON(w, status, map[string]Outcome{"status": o})
}
