package main

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
)

// topologySVG draws the mesh: the entry (the gateway: it calls, nobody calls
// it) on the left, the other apps in the middle, topics right of them, and
// apps that only consume events on the far right; an arrow per edge,
// labelled with its rate, error share, p99 and total. Unhealthy apps and
// failing edges are red.
func topologySVG(s Snapshot) template.HTML {
	const colW, rowH, nodeW, nodeH, top = 300, 76, 180, 34, 30
	called, calls, consumes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range s.Edges {
		switch e.Kind {
		case "invoke":
			called[e.To], calls[e.From] = true, true
		case "consume":
			consumes[e.To] = true
		}
	}
	unhealthy := map[string]bool{}
	cols := make([][]string, 4)
	for _, a := range s.Apps {
		unhealthy[a.ID] = !a.Healthy()
		c := 1
		switch {
		case len(calls) == 0 && (a.ID == "gateway" || strings.HasPrefix(a.ID, "gateway-")):
			c = 0 // nothing called yet: the gateway by its name
		case calls[a.ID] && !called[a.ID]:
			c = 0
		case consumes[a.ID] && !calls[a.ID] && !called[a.ID]:
			c = 3
		}
		cols[c] = append(cols[c], a.ID)
	}
	topics := map[string]bool{}
	for _, e := range s.Edges {
		for _, n := range []string{e.From, e.To} {
			if strings.HasPrefix(n, "topic:") && !topics[n] {
				topics[n] = true
				cols[2] = append(cols[2], n)
			}
		}
	}
	sort.Strings(cols[2])
	if len(cols[3]) == 0 {
		cols = cols[:3]
	}
	type pos struct{ x, y float64 }
	at := map[string]pos{}
	rows := 0
	for _, names := range cols {
		rows = max(rows, len(names))
	}
	for c, names := range cols {
		for i, n := range names {
			at[n] = pos{x: float64(20 + c*colW), y: top + float64(i*rowH)}
		}
	}
	width, height := 20+(len(cols)-1)*colW+nodeW+20, top+max(rows, 1)*rowH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="topology" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" style="max-width:100%%;height:auto">`, width, height, width, height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>`)
	var labels strings.Builder // drawn last, over every arrow
	for i, e := range s.Edges {
		from, ok1 := at[e.From]
		to, ok2 := at[e.To]
		if !ok1 || !ok2 {
			continue
		}
		x1, y1 := from.x+nodeW, from.y+nodeH/2
		x2, y2 := to.x, to.y+nodeH/2
		bend := 28 + float64(i%3)*14
		switch {
		case to.x < from.x: // back to the left: from the topic's left side to the app's right
			x1, x2 = from.x, to.x+nodeW
			bend = -bend
		case to.x == from.x: // within a column: out and back on the right
			x1, x2 = from.x+nodeW, to.x+nodeW
		}
		cx, cy := (x1+x2)/2, (y1+y2)/2-bend
		if to.x == from.x {
			cx, cy = from.x+nodeW+70, (y1+y2)/2
		}
		// The curve's midpoint, where its label goes.
		mx, my := 0.25*x1+0.5*cx+0.25*x2, 0.25*y1+0.5*cy+0.25*y2
		class := "edge " + e.Kind
		if e.Errors > 0 {
			class += " failing"
		}
		label := edgeLabel(e)
		fmt.Fprintf(&b, `<g class="%s" data-from="%s" data-to="%s" data-kind="%s">`, class, esc(e.From), esc(e.To), e.Kind)
		fmt.Fprintf(&b, `<path d="M%.0f,%.0f Q%.0f,%.0f %.0f,%.0f" marker-end="url(#arrow)"/>`, x1, y1, cx, cy, x2, y2)
		fmt.Fprintf(&b, `<title>%s %s → %s: %s</title></g>`, e.Kind, esc(e.From), esc(e.To), esc(label))
		w := float64(len(label)) * 5.6
		fmt.Fprintf(&labels, `<g class="edge-label"><rect x="%.0f" y="%.0f" width="%.0f" height="14" rx="3"/><text x="%.0f" y="%.0f" text-anchor="middle">%s</text></g>`,
			mx-w/2, my-10, w, mx, my+1, esc(label))
	}
	for n, p := range at {
		class, label := "node app", n
		if strings.HasPrefix(n, "topic:") {
			class, label = "node topic", "topic "+strings.TrimPrefix(n, "topic:")
		} else if unhealthy[n] {
			class += " unhealthy"
		}
		fmt.Fprintf(&b, `<g class="%s" data-node="%s"><rect x="%.0f" y="%.0f" width="%d" height="%d" rx="6"/>`, class, esc(n), p.x, p.y, nodeW, nodeH)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text></g>`, p.x+nodeW/2, p.y+nodeH/2+4, esc(label))
	}
	b.WriteString(labels.String())
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every name in it went through esc
}

// edgeLabel is "0.20/s · n=3 · 0% err · p99 12ms" (no rate while the last
// minute's is nil).
func edgeLabel(e Edge) string {
	p99 := "p99 –"
	if !math.IsNaN(e.P99ms) && !math.IsInf(e.P99ms, 0) {
		p99 = fmt.Sprintf("p99 %.0fms", e.P99ms)
	}
	rate := ""
	if e.Rate >= 0.005 {
		rate = fmt.Sprintf("%.2f/s · ", e.Rate)
	}
	return fmt.Sprintf("%sn=%.0f · %.0f%% err · %s", rate, e.Total, 100*e.ErrorRatio(), p99)
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// traceSVG draws a trace as a timeline: one row per span in tree order, the
// bar placed by its start and sized by its duration; failed spans are red.
func traceSVG(v TraceView) template.HTML {
	const labelW, barW, rowH = 380, 560, 22
	total := v.Total.Microseconds()
	if total <= 0 {
		total = 1
	}
	width, height := labelW+barW+80, 24+len(v.Rows)*rowH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, width, height, width, height)
	fmt.Fprintf(&b, `<text x="%d" y="14" class="axis">0 ms</text><text x="%d" y="14" text-anchor="end" class="axis">%.1f ms</text>`, labelW, labelW+barW, float64(total)/1000)
	for i, r := range v.Rows {
		y := 24 + i*rowH
		x := labelW + int(float64(r.Offset.Microseconds())/float64(total)*barW)
		w := max(2, int(float64(r.Span.Duration)/float64(total)*barW))
		class := "span"
		if r.Span.Failed() {
			class += " failed"
		}
		fmt.Fprintf(&b, `<g class="%s" data-service="%s">`, class, esc(r.Service))
		room := (labelW-12-r.Depth*12)/7 - len(r.Service) - 2 // characters left for the operation
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="label">%s: %s</text>`, 4+r.Depth*12, y+15, esc(r.Service), esc(shorten(r.Span.OperationName, room)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="2" fill="%s"/>`, x, y+3, w, rowH-6, colour(r.Service))
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="dur">%.2f ms</text>`, min(x+w+4, labelW+barW+4), y+15, float64(r.Span.Duration)/1000)
		fmt.Fprintf(&b, `<title>%s %s, at +%.2f ms for %.2f ms%s</title></g>`, esc(r.Service), esc(r.Span.OperationName),
			float64(r.Offset.Microseconds())/1000, float64(r.Span.Duration)/1000, esc(statusOf(r.Span)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every name in it went through esc
}

func statusOf(s JaegerSpan) string {
	for _, k := range []string{"http.status_code", "http.response.status_code", "rpc.grpc.status_code"} {
		if v := s.Tag(k); v != "" {
			return ", " + k + "=" + v
		}
	}
	return ""
}

func shorten(s string, n int) string {
	if n < 8 {
		n = 8
	}
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac"}

// colour gives each service a stable colour.
func colour(service string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(service); i++ {
		h = (h ^ uint32(service[i])) * 16777619
	}
	return palette[h%uint32(len(palette))]
}
