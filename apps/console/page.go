package main

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// The page is rendered here; a few lines of plain JavaScript re-fetch the
// panel every few seconds. No build step, nothing loaded from elsewhere.
var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"topology": topologySVG,
	"timeline": traceSVG,
	"itoa":     itoa,
	"join":     strings.Join,
	"ms":       func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) },
	"clock":    func(t time.Time) string { return t.Format("15:04:05.000") },
	"short":    func(s string) string { return s[:min(len(s), 12)] },
}).Parse(`
{{define "style"}}<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#223;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
header h1{font-size:18px;margin:0} header a{color:#cde}
main{padding:10px 20px} section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:12px 0;padding:8px 14px}
h2{font-size:15px;margin:6px 0 10px} table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;color:#555} code{font-size:12px}
.ok{color:#197a33;font-weight:600} .bad{color:#c62828;font-weight:700}
.unhealthy td:first-child::before,.problem::before{content:"● ";color:#c62828}
tr.unhealthy{background:#fff1f1} #problems li{color:#c62828}
.state-open{background:#c62828;color:#fff;padding:1px 6px;border-radius:4px}
.state-half-open{background:#ef6c00;color:#fff;padding:1px 6px;border-radius:4px}
.state-closed{background:#e3f2e6;color:#197a33;padding:1px 6px;border-radius:4px}
svg text{font:12px system-ui,sans-serif} .node rect{fill:#eef3fb;stroke:#4e79a7} .node.topic rect{fill:#fff8e6;stroke:#c79100}
.node.unhealthy rect{fill:#fde7e7;stroke:#c62828;stroke-width:2} .edge path{fill:none;stroke:#777;stroke-width:1.5}
.edge.publish path,.edge.consume path{stroke-dasharray:5 3} .edge.failing path{stroke:#c62828}
.span.failed rect{stroke:#c62828;stroke-width:2} .axis,.dur{fill:#777;font-size:11px}
.muted{color:#888} .banner{background:#fff3cd;padding:6px 10px;border-radius:4px}
pre{white-space:pre-wrap;word-break:break-all;font-size:12px;margin:0}
#logs{table-layout:fixed} #logs td:nth-child(1){width:100px} #logs td:nth-child(2){width:140px} #logs td:nth-child(3){width:60px}
.edge-label rect{fill:#fff;opacity:.85} .edge-label text{font-size:10.5px;fill:#333}
</style>{{end}}

{{define "index"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ordermesh console</title><link rel="icon" href="data:,">{{template "style"}}</head>
<body><header><h1>ordermesh console</h1><span class="muted">read-only · refreshes every 3 s</span><span id="refresh-error"></span></header>
<main id="panel">{{template "panel" .}}</main>
<script>
(function () {
  var panel = document.getElementById("panel"), note = document.getElementById("refresh-error");
  function refresh() {
    fetch("/panel", {cache: "no-store"}).then(function (res) {
      if (!res.ok) { throw new Error("console answered " + res.status); }
      return res.text();
    }).then(function (html) {
      panel.innerHTML = html;
      note.textContent = "";
    }).catch(function (err) {
      note.textContent = "refresh failed: " + err.message;
    });
  }
  setInterval(refresh, 3000);
})();
</script>
</body></html>{{end}}

{{define "panel"}}
<div id="taken" data-taken="{{.Taken.UnixMilli}}" class="muted">as of {{clock .Taken}}</div>
<section id="problems-section"><h2>Needs attention</h2>
{{if .Problems}}<ul id="problems">{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{else}}<p class="ok" id="all-healthy">Everything is healthy.</p>{{end}}
</section>



<section><h2>Topology</h2>
<p class="muted">Service invocation (solid) and events (dashed), from the sidecars' metrics through Prometheus: rate over the last minute; error share, p99 and totals since the sidecars started.</p>
{{if .EdgesError}}<p class="banner">Prometheus: {{.EdgesError}}</p>{{end}}
{{topology .}}
{{if .Targets}}<p class="muted">Prometheus targets: {{range .Targets}}<span{{if ne .Health "up"}} class="bad"{{end}} data-target="{{.Job}}/{{.App}}" data-health="{{.Health}}">{{.Job}}/{{.App}} {{.Health}}</span>; {{end}}</p>{{end}}
</section>

<section><h2>Latest orders</h2>
{{if .OrdersError}}<p class="banner">Jaeger: {{.OrdersError}}</p>{{end}}
{{if .Orders}}<table id="orders"><tr><th>placed at</th><th>trace</th><th>took</th><th>spans</th><th>services</th></tr>
{{range .Orders}}<tr data-trace="{{.TraceID}}"{{if .Failed}} class="unhealthy"{{end}}><td>{{clock .Start}}</td><td><a href="/traces/{{.TraceID}}"><code>{{.TraceID}}</code></a></td><td>{{ms .Duration}}</td><td>{{.Spans}}</td><td>{{join .Services ", "}}</td></tr>{{end}}
</table>{{else}}<p class="muted">No order traced yet.</p>{{end}}
</section>

<section><h2>Circuit breakers</h2>
{{if .Breakers}}<table id="breakers"><tr><th>caller</th><th>target</th><th>state</th></tr>
{{range .Breakers}}<tr data-breaker="{{.Caller}}→{{.Target}}" data-state="{{.State}}"><td>{{.Caller}}</td><td>{{.Target}}</td><td><span class="state-{{.State}}">{{.State}}</span></td></tr>{{end}}
</table>{{else}}<p class="muted">No breaker has been used yet.</p>{{end}}
</section>

<section><h2>Dead letters</h2>
{{if .DeadLetters}}<table id="deadletters"><tr><th>app</th><th>topic</th><th>events</th></tr>
{{range .DeadLetters}}<tr class="{{if eq .Kind "received"}}unhealthy{{end}}"><td>{{.App}}</td><td>{{.Topic}}</td><td>{{printf "%.0f" .Count}} {{.Kind}}</td></tr>{{end}}
</table>{{else}}<p class="ok">None.</p>{{end}}
</section>


<section><h2>Apps and their sidecars</h2>
<table id="apps"><tr><th>app</th><th>app</th><th>sidecar</th><th>daprd</th><th>ports (app · http · grpc · metrics)</th><th>components</th><th>subscriptions</th></tr>
{{range .Apps}}<tr data-app="{{.ID}}" data-healthy="{{.Healthy}}"{{if not .Healthy}} class="unhealthy"{{end}}>
<td><b>{{.ID}}</b></td>
<td>{{if .AppError}}<span class="bad" title="{{.AppError}}">not ready</span>{{else}}<span class="ok">ready</span>{{end}}</td>
<td>{{if .SidecarError}}<span class="bad" title="{{.SidecarError}}">unhealthy</span>{{else}}<span class="ok">healthy</span>{{end}}</td>
<td>{{if .Version}}{{.Version}}{{else}}<span class="muted">?</span>{{end}}</td>
<td><code>{{.AppPort}} · {{.HTTPPort}} · {{.GRPCPort}} · {{.MetricsPort}}</code></td>
<td>{{range .Components}}<div><code>{{.Name}}</code> <span class="muted">{{.Type}}/{{.Version}}</span></div>{{end}}{{range .Metrics.FailedComponents}}<div class="bad problem">{{.}} failed</div>{{end}}</td>
<td>{{range .Subscriptions}}<div><code>{{.PubsubName}}/{{.Topic}}</code>{{range .Rules}} → <code>{{.Path}}</code>{{end}}{{if .DeadLetterTopic}} <span class="muted">dead letters: {{.DeadLetterTopic}}</span>{{end}}</div>{{end}}</td>
</tr>{{end}}
</table></section>
{{end}}

{{define "trace"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trace {{.Trace.TraceID}} · ordermesh console</title><link rel="icon" href="data:,">{{template "style"}}</head>
<body><header><h1>ordermesh console</h1><a href="/">← back</a></header>
<main>
<section><h2>Trace <code id="trace-id">{{.Trace.TraceID}}</code></h2>
{{if .Error}}<p class="banner">Jaeger: {{.Error}}</p>{{end}}
{{if .Found}}<p class="muted">{{len .Rows}} spans over {{ms .Total}}; a span whose parent is not in the trace (the gateway's own) starts a row at the left.</p>
{{timeline .}}{{else}}<p class="bad">Jaeger has no such trace (yet).</p>{{end}}
</section>
<section><h2>Log lines of every app for this trace</h2>
{{if .Logs}}<table id="logs"><tr><th>time</th><th>app</th><th>level</th><th>line</th></tr>
{{range .Logs}}<tr data-app="{{.App}}"><td>{{clock .Time}}</td><td>{{.App}}</td><td>{{.Level}}</td><td><pre>{{.Raw}}</pre></td></tr>{{end}}
</table>{{else}}<p class="muted">No app logged a line with this trace id (apps log each request at LOG_LEVEL=debug).</p>{{end}}
</section>
</main></body></html>{{end}}
`))
