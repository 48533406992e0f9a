// Package resiliency holds ordermesh's checks of resiliency.yaml against Dapr's
// own types, circuit breaker and retry (in its tests), and the time-scaled
// copy of that file which the end-to-end chaos test gives its sidecars, so an
// outage that opens a 30 s breaker can be watched in a fraction of a second
// with the file's own thresholds, probe counts and retry counts.
//
// resiliency.yaml holds several Resiliency documents separated by `---`
// lines (one per group of sidecars, told apart by their scopes); every
// function here handles all of them.
package resiliency

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	"sigs.k8s.io/yaml"
)

const (
	kind       = "Resiliency"
	apiVersion = "dapr.io/v1alpha1"
)

// Load reads every Resiliency document of the file at path strictly; see
// Parse.
func Load(path string) ([]*v1alpha1.Resiliency, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load resiliency: %w", err)
	}
	docs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load resiliency %s: %w", path, err)
	}
	return docs, nil
}

// Parse decodes every document of a YAML stream into Dapr's Resiliency type,
// in file order, strictly: an unknown or misspelt field is an error, and so
// is a document of another kind, one without a name, two documents with one
// name, or a stream with no document. daprd decodes leniently: it would
// silently drop a misspelt field (leaving that policy at Dapr's default) and
// silently skip a document whose kind is misspelt. Documents that hold only
// comments are skipped.
//
// Documents are split where daprd's hot-reload resource loader splits them:
// at every line that starts with "---". At start, though, daprd 1.18 reads
// only the first document of each resiliency file (LoadLocalResiliency); the
// test TestDaprdLoadsItsDocumentForEveryApp checks what each sidecar gets.
func Parse(data []byte) ([]*v1alpha1.Resiliency, error) {
	var docs []*v1alpha1.Resiliency
	names := map[string]int{}
	for i, doc := range splitDocuments(data) {
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(probe) == 0 {
			continue // comments only
		}
		var res v1alpha1.Resiliency
		if err := yaml.UnmarshalStrict(doc, &res); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if res.TypeMeta.Kind != kind || res.TypeMeta.APIVersion != apiVersion {
			return nil, fmt.Errorf("document %d: want kind %s, apiVersion %s; got %q, %q", i+1, kind, apiVersion, res.TypeMeta.Kind, res.TypeMeta.APIVersion)
		}
		if res.Name == "" {
			return nil, fmt.Errorf("document %d: no metadata.name", i+1)
		}
		if first, dup := names[res.Name]; dup {
			return nil, fmt.Errorf("document %d: name %q is already document %d's", i+1, res.Name, first)
		}
		names[res.Name] = i + 1
		docs = append(docs, &res)
	}
	if len(docs) == 0 {
		return nil, errors.New("no Resiliency document")
	}
	return docs, nil
}

// splitDocuments cuts a YAML stream at the lines that start with "---", as
// daprd's hot-reload loader does (pkg/internal/loader/disk, splitYamlDoc).
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("---")) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
		cur.WriteByte('\n')
	}
	return append(docs, cur.Bytes())
}

// Scaled returns a copy of one Resiliency document with every duration
// divided by factor and nothing else changed. The durations are the
// policies' timeouts, the retries' duration and maxInterval, and the circuit
// breakers' timeout and interval: the same fields the harness's
// ScaleResiliency scales. A duration that would become zero is an error
// (the harness floors it at 1ms instead): Dapr reads a zero breaker timeout
// as its 60 s default and a zero timeout as none.
func Scaled(res *v1alpha1.Resiliency, factor int) (*v1alpha1.Resiliency, error) {
	if factor < 1 {
		return nil, fmt.Errorf("scale resiliency: factor %d, want 1 or more", factor)
	}
	out := res.DeepCopy()
	scale := func(field, value string) (string, error) {
		if value == "" {
			return "", nil
		}
		d, err := parseDuration(value)
		if err != nil {
			return "", fmt.Errorf("scale resiliency: %s: %w", field, err)
		}
		scaled := d / time.Duration(factor)
		if d != 0 && scaled == 0 {
			return "", fmt.Errorf("scale resiliency: %s: %s divided by %d is zero", field, value, factor)
		}
		return scaled.String(), nil
	}
	p := &out.Spec.Policies
	var err error
	for _, name := range slices.Sorted(maps.Keys(p.Timeouts)) {
		if p.Timeouts[name], err = scale("timeouts."+name, p.Timeouts[name]); err != nil {
			return nil, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Retries)) {
		r := p.Retries[name]
		if r.Duration, err = scale("retries."+name+".duration", r.Duration); err != nil {
			return nil, err
		}
		if r.MaxInterval, err = scale("retries."+name+".maxInterval", r.MaxInterval); err != nil {
			return nil, err
		}
		p.Retries[name] = r
	}
	for _, name := range slices.Sorted(maps.Keys(p.CircuitBreakers)) {
		cb := p.CircuitBreakers[name]
		if cb.Timeout, err = scale("circuitBreakers."+name+".timeout", cb.Timeout); err != nil {
			return nil, err
		}
		if cb.Interval, err = scale("circuitBreakers."+name+".interval", cb.Interval); err != nil {
			return nil, err
		}
		p.CircuitBreakers[name] = cb
	}
	return out, nil
}

// ScaledAll returns Scaled copies of every document, in order.
func ScaledAll(docs []*v1alpha1.Resiliency, factor int) ([]*v1alpha1.Resiliency, error) {
	out := make([]*v1alpha1.Resiliency, 0, len(docs))
	for _, res := range docs {
		scaled, err := Scaled(res, factor)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", res.Name, err)
		}
		out = append(out, scaled)
	}
	return out, nil
}

// WriteScaled writes to dstPath the Scaled copy of every Resiliency document
// of the file at srcPath, in order and separated by `---` lines, for sidecars
// that must live through a test's outage in seconds.
//
// The end-to-end harness of the root module (apps/internal/harness,
// ScaleResiliency), which may not import Dapr, scales the same fields by the
// same rule on the generic YAML: change both together.
func WriteScaled(srcPath, dstPath string, factor int) error {
	docs, err := Load(srcPath)
	if err != nil {
		return err
	}
	scaled, err := ScaledAll(docs, factor)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Generated by WriteScaled from %s: every duration divided by %d.\n", srcPath, factor)
	for i, res := range scaled {
		body, err := yaml.Marshal(res)
		if err != nil {
			return fmt.Errorf("write scaled resiliency: %w", err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(body)
	}
	if err := os.WriteFile(dstPath, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write scaled resiliency: %w", err)
	}
	return nil
}

// parseDuration reads a duration as Dapr does: a bare integer is milliseconds.
func parseDuration(value string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(value, 10, 64); err == nil {
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, errors.New("invalid duration " + strconv.Quote(value))
	}
	return d, nil
}
