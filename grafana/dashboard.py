#!/usr/bin/env python3
# Generates grafana/dashboards/podcast-worker.json (the committed file is what Grafana loads):
#   python3 grafana/dashboard.py > grafana/dashboards/podcast-worker.json
# tests/it/monitoring.rs checks every query against a live Prometheus; run it after a change.
import json
DS = {"type": "prometheus", "uid": "pw-prometheus"}
panels = []
pid = [0]
y = [0]

def nid():
    pid[0] += 1
    return pid[0]

def row(title, repeat=None):
    p = {"type": "row", "id": nid(), "title": title, "collapsed": False, "panels": [],
         "gridPos": {"h": 1, "w": 24, "x": 0, "y": y[0]}}
    if repeat:
        p["repeat"] = repeat
    panels.append(p)
    y[0] += 1

def ts(title, targets, x, w=8, h=8, unit="short", desc="", stat=False, maxv=None):
    p = {"type": "stat" if stat else "timeseries", "id": nid(), "title": title, "description": desc,
         "datasource": DS, "gridPos": {"h": h, "w": w, "x": x, "y": y[0]},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}} if not stat else
                    {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "colorMode": "value", "graphMode": "area", "textMode": "auto"},
         "targets": [{"datasource": DS, "refId": chr(65 + i), "expr": e, "legendFormat": l, "range": True}
                     for i, (e, l) in enumerate(targets)]}
    if maxv is not None:
        p["fieldConfig"]["defaults"]["max"] = maxv
        p["fieldConfig"]["defaults"]["min"] = 0
    panels.append(p)

def nl(h=8):
    y[0] += h

R = "$__rate_interval"
def q(level, metric, by, extra=""):
    return (f'histogram_quantile({level}, sum by (le{", " + by if by else ""}) '
            f'(rate({metric}_bucket{extra}[{R}])))')

row("Throughput and success")
ts("Tasks finished per second by site", [
    (f'sum by (site) (rate(pw_tasks_finished_total[{R}]))', "finished {{site}}"),
    (f'sum by (site) (rate(pw_tasks_enqueued_total[{R}]))', "enqueued {{site}}")], 0, unit="ops",
   desc="Tasks leaving our hands (any outcome) vs tasks the fetcher queued.")
ts("Success ratio by site", [
    (f'sum by (site) (rate(pw_tasks_finished_total{{outcome="completed"}}[{R}])) / '
     f'sum by (site) (rate(pw_tasks_finished_total[{R}]))', "{{site}}")], 8, unit="percentunit", maxv=1,
   desc="Completed / finished. Empty while nothing finishes.")
ts("Outcomes", [
    (f'sum by (outcome) (rate(pw_tasks_finished_total[{R}]))', "{{outcome}}"),
    (f'sum by (error_class) (rate(pw_task_failures_total[{R}]))', "failed: {{error_class}}"),
    (f'sum by (error_class) (rate(pw_task_retries_total[{R}]))', "retry: {{error_class}}")], 16, unit="ops")
nl()
row("Durations")
ts("Task duration percentiles", [
    (q(0.5, "pw_task_duration_seconds", "site"), "p50 {{site}}"),
    (q(0.9, "pw_task_duration_seconds", "site"), "p90 {{site}}"),
    (q(0.99, "pw_task_duration_seconds", "site"), "p99 {{site}}")], 0, unit="s",
   desc="Claim to ack.")
ts("Stage duration p90", [
    (q(0.9, "pw_task_stage_duration_seconds", "stage"), "{{stage}}")], 8, unit="s")
ts("Fetch-to-start latency", [
    (q(0.5, "pw_fetch_to_start_seconds", "site"), "p50 {{site}}"),
    (q(0.9, "pw_fetch_to_start_seconds", "site"), "p90 {{site}}")], 16, unit="s",
   desc="From the fetcher's enqueue to an executor starting the task.")
nl()
row("Queue")
ts("Stream lag (not yet delivered)", [
    ('max by (stream) (pw_stream_lag)', "{{stream}}")], 0)
ts("Pending (delivered, not acked)", [
    ('max by (stream) (pw_stream_pending)', "{{stream}}")], 8)
ts("Dead letters", [
    ('max(pw_stream_length{stream="dead"})', "dead-letter stream length"),
    (f'sum(rate(pw_tasks_finished_total{{outcome="dead_lettered"}}[{R}]))', "dead-lettered / s")], 16)
nl()
ts("Fetcher", [
    (f'sum by (site) (rate(pw_tasks_fetched_total[{R}]))', "fetched {{site}}"),
    (f'sum by (site) (rate(pw_tasks_deduplicated_total[{R}]))', "deduplicated {{site}}")], 0, unit="ops")
ts("Fetcher leader, backpressure, API key", [
    ('sum(pw_fetcher_leader)', "leaders"),
    ('max(pw_fetcher_backpressure)', "backpressure"),
    ('max(pw_api_key_refused)', "API key refused")], 8)
ts("Outbox", [('max(pw_outbox_entries)', "results waiting")], 16,
   desc="Finished results the manager has not accepted yet.")
nl()
row("Manager API")
ts("Requests by endpoint and status", [
    (f'sum by (endpoint, status_class) (rate(pw_api_requests_total[{R}]))', "{{endpoint}} {{status_class}}")],
   0, unit="reqps")
ts("API errors", [
    (f'sum by (endpoint, status_class) (rate(pw_api_requests_total{{status_class!="2xx"}}[{R}]))',
     "{{endpoint}} {{status_class}}"),
    (f'sum by (endpoint) (rate(pw_api_retries_total[{R}]))', "retries {{endpoint}}")], 8, unit="reqps")
ts("API latency p90", [
    (q(0.9, "pw_api_request_duration_seconds", "endpoint"), "{{endpoint}}")], 16, unit="s")
nl()
row("Browser pool and capacity")
ts("Slots", [
    ('sum(pw_tasks_in_flight{job="executor"})', "in flight"),
    ('sum(pw_slots_free{job="executor"})', "free"),
    ('count(up{job="executor"} == 1)', "executors up")], 0, w=6)
ts("Browser contexts", [('sum(pw_browser_contexts{job="executor"})', "open contexts")], 6, w=6)
ts("Browser memory (PSS)", [
    ('sum(pw_browser_memory_bytes{job="executor"})', "all executors"),
    ('max(pw_browser_memory_bytes{job="executor"})', "largest executor")], 12, w=6, unit="bytes")
ts("Browser restarts and mail waits", [
    (f'sum by (reason) (rate(pw_browser_restarts_total[{R}]))', "restart {{reason}}"),
    (q(0.9, "pw_mail_wait_seconds", "outcome"), "mail wait p90 {{outcome}}")], 18, w=6)
nl()
row("Demo manager (simulator)")
ts("Simulator tasks by state", [('sum by (state) (pw_sim_tasks{job="simulator"})', "{{state}}")], 0, w=12,
   desc="Only in the demo: the simulated manager's view of its tasks.")
ts("Simulator requests", [
    (f'sum by (endpoint, status) (rate(pw_sim_requests_total{{job="simulator"}}[{R}]))', "{{endpoint}} {{status}}")],
   12, w=12, unit="reqps")
nl()
row("Executor $instance", repeat="instance")
sel = '{job="executor", instance=~"$instance"}'
ts("Tasks", [
    (f'sum by (outcome) (rate(pw_tasks_finished_total{{job="executor", instance=~"$instance"}}[{R}]))', "{{outcome}}"),
    (f'pw_tasks_in_flight{sel}', "in flight"),
    (f'pw_slots_free{sel}', "free slots")], 0)
ts("Browser and process memory", [
    (f'pw_browser_memory_bytes{sel}', "browser PSS"),
    (f'process_resident_memory_bytes{sel}', "executor RSS")], 8, unit="bytes")
ts("CPU, contexts and health", [
    (f'rate(process_cpu_seconds_total{{job="executor", instance=~"$instance"}}[{R}])', "cpu cores"),
    (f'pw_browser_contexts{sel}', "browser contexts"),
    (f'pw_redis_up{sel}', "redis up"),
    (f'pw_manager_up{sel}', "manager up")], 16)
nl()

dash = {
    "uid": "pw-fleet", "title": "Podcast worker fleet", "tags": ["podcast-worker"], "timezone": "utc",
    "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "annotations": {"list": []},
    "templating": {"list": [{
        "name": "instance", "label": "executor", "type": "query", "datasource": DS,
        "query": {"query": 'label_values(pw_build_info{role="executor"}, instance)', "refId": "instance"},
        "definition": 'label_values(pw_build_info{role="executor"}, instance)',
        "refresh": 2, "multi": True, "includeAll": True, "current": {"selected": True, "text": "All", "value": "$__all"},
        "sort": 1}]},
    "panels": panels,
}
print(json.dumps(dash, indent=2))
