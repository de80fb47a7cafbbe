#!/usr/bin/env python3
# Generates grafana/dashboards/podcast-worker.json (the committed file is what Grafana loads):
#   python3 grafana/dashboard.py > grafana/dashboards/podcast-worker.json
# tests/it/monitoring.rs checks every query against a live Prometheus; run it after a change.
import json
# Every panel reads the datasource the `datasource` variable picks (default: the provisioned pw-prometheus), so
# the dashboard imports into any Grafana. Selectors use the `role` (pw_build_info) and `domain` variables, never
# a scrape job's name.
DS = {"type": "prometheus", "uid": "${datasource}"}
# A panel whose description starts with this is quiet in a healthy run; the dashboard check
# (scripts/demo-report dashboard) then only proves its queries well-formed instead of requiring a change.
QUIET = "Zero when healthy. "
# Keeps series of processes of the selected roles (every pw_* series carries job and instance).
ROLE = 'and on (job, instance) pw_build_info{role=~"$role"}'
DOM = 'domain=~"$domain"'
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

def ts(title, targets, x, unit, w=8, h=8, desc="", stat=False, maxv=None):
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
ts("Tasks finished and enqueued per second", [
    (f'sum by (site) (rate(pw_tasks_finished_total{{{DOM}}}[{R}]))', "finished {{site}}"),
    (f'sum by (site) (rate(pw_tasks_enqueued_total{{{DOM}}}[{R}]))', "enqueued {{site}}")], 0, "ops",
   desc="Tasks leaving our hands (any outcome) vs tasks the fetcher queued, for the selected domains.")
ts("Success ratio by site", [
    (f'sum by (site) (rate(pw_tasks_finished_total{{outcome="completed", {DOM}}}[{R}])) / '
     f'sum by (site) (rate(pw_tasks_finished_total{{{DOM}}}[{R}]))', "{{site}}")], 8, "percentunit", maxv=1,
   desc="Completed / finished. Empty while nothing finishes.")
ts("Outcomes", [
    (f'sum by (outcome) (rate(pw_tasks_finished_total{{{DOM}}}[{R}]))', "{{outcome}}")], 16, "ops",
   desc="completed, failed (reported with fail), refused (the manager refused the report), gone (404), "
        "dead_lettered.")
nl()
ts("Failures and retries by error class", [
    (f'sum by (error_class) (rate(pw_task_failures_total[{R}]))', "failed: {{error_class}}"),
    (f'sum by (error_class) (rate(pw_task_retries_total[{R}]))', "retry: {{error_class}}")], 0, "ops",
   desc=QUIET + "Tasks reported failed by the class of their last error, and attempts tried again.")
ts("Failure ratio by domain", [
    (f'sum by (domain) (rate(pw_tasks_finished_total{{outcome=~"failed|refused|dead_lettered", {DOM}}}[{R}])) / '
     f'sum by (domain) (rate(pw_tasks_finished_total{{{DOM}}}[{R}]))', "{{domain}}")], 8, "percentunit", maxv=1,
   desc=QUIET + "What PwDomainFailureRatioHigh watches (it also needs a minimum volume).")
ts("Dead letters", [
    ('max(pw_stream_length{stream="dead"})', "dead-letter stream length"),
    (f'sum(rate(pw_tasks_finished_total{{outcome="dead_lettered"}}[{R}]))', "dead-lettered / s")], 16, "short",
   desc=QUIET + "Entries that could not be processed. Read them with the dead-letter stream (docs/operations.md).")
nl()
row("Durations")
ts("Task duration percentiles", [
    (q(0.5, "pw_task_duration_seconds", "site"), "p50 {{site}}"),
    (q(0.9, "pw_task_duration_seconds", "site"), "p90 {{site}}"),
    (q(0.99, "pw_task_duration_seconds", "site"), "p99 {{site}}")], 0, "s",
   desc="Claim to ack: from the executor claiming the entry to its acknowledgement.")
ts("Stage duration p90", [
    (q(0.9, "pw_task_stage_duration_seconds", "stage"), "{{stage}}")], 8, "s")
ts("Fetch-to-start latency", [
    (q(0.5, "pw_fetch_to_start_seconds", "site"), "p50 {{site}}"),
    (q(0.9, "pw_fetch_to_start_seconds", "site"), "p90 {{site}}")], 16, "s",
   desc="From the fetcher's enqueue to an executor starting the task.")
nl()
row("Queue")
ts("Stream lag (not yet delivered)", [
    ('max by (stream) (pw_stream_lag)', "{{stream}}")], 0, "short",
   desc="Shared Redis state reported by every sampling process: max, never sum.")
ts("Pending (delivered, not acked)", [
    ('max by (stream) (pw_stream_pending)', "{{stream}}")], 8, "short")
ts("Outbox", [('max(pw_outbox_entries)', "results waiting")], 16, "short",
   desc=QUIET + "Finished results the manager has not accepted yet (sampled by the fetcher).")
nl()
ts("Fetcher", [
    (f'sum by (site) (rate(pw_tasks_fetched_total[{R}]))', "fetched {{site}}")], 0, "ops", w=4,
   desc="Tasks listed by GET /links.")
ts("Listed again (deduplicated)", [
    (f'sum by (site) (rate(pw_tasks_deduplicated_total[{R}]))', "deduplicated {{site}}")], 4, "ops", w=4,
   desc=QUIET + "Listed tasks already in our hands (queued, running or reported): the manager listed them "
        "twice and the fetcher skipped them.")
ts("Fetcher leader", [('sum(pw_fetcher_leader)', "leaders")], 8, "short",
   desc="Fetchers holding the leader lease: 1 when healthy.")
ts("Backpressure and API key", [
    ('max(pw_fetcher_backpressure)', "backpressure"),
    ('max(pw_api_key_refused)', "API key refused")], 16, "bool_yes_no",
   desc=QUIET + "1 while the fetcher holds back on a full backlog / while the manager refuses the API key.")
nl()
row("Manager API and Redis")
ts("Requests by endpoint and status", [
    (f'sum by (endpoint, status_class) (rate(pw_api_requests_total[{R}]) {ROLE})',
     "{{endpoint}} {{status_class}}")], 0, "reqps")
ts("API errors and retries", [
    (f'sum by (endpoint, status_class) (rate(pw_api_requests_total{{status_class!="2xx"}}[{R}]) {ROLE})',
     "{{endpoint}} {{status_class}}"),
    (f'sum by (endpoint) (rate(pw_api_retries_total[{R}]) {ROLE})', "retries {{endpoint}}")], 8, "reqps",
   desc=QUIET + "Answers other than 2xx (none = no answer) and attempts retried.")
ts("API latency p90", [
    (f'histogram_quantile(0.9, sum by (le, endpoint) (rate(pw_api_request_duration_seconds_bucket[{R}]) {ROLE}))',
     "{{endpoint}}")], 16, "s")
nl()
ts("Redis and manager reachable", [
    (f'min(pw_redis_up {ROLE})', "redis up (worst process)"),
    (f'min(pw_manager_up {ROLE})', "manager up (worst process)")], 0, "bool_yes_no", w=8,
   desc="1 when the last command / request of every selected process got an answer.")
ts("Redis data loss", [
    (f'sum by (op) (increase(pw_redis_data_loss_total[{R}]) {ROLE})', "found at {{op}}")], 8, "short", w=8,
   desc=QUIET + "Times a process found the consumer group or a task stream gone (NOGROUP): Redis lost the "
        "task ledger. What PwRedisDataLoss watches; see its runbook.")
ts("Processes by role", [('count by (role) (pw_build_info{role=~"$role"})', "{{role}}")], 16, "short", w=8)
nl()
row("Browser pool and capacity")
ts("Slots", [
    ('sum(pw_tasks_in_flight)', "in flight"),
    ('sum(pw_slots_free)', "free")], 0, "short", w=6)
ts("Browser contexts", [('sum(pw_browser_contexts)', "open contexts")], 6, "short", w=6)
ts("Browser memory (PSS)", [
    ('sum(pw_browser_memory_bytes)', "all executors"),
    ('max(pw_browser_memory_bytes)', "largest executor")], 12, "bytes", w=6)
ts("Browser restarts", [
    (f'sum by (reason) (rate(pw_browser_restarts_total[{R}]))', "{{reason}}")], 18, "ops", w=6,
   desc="recycle after PW_BROWSER_MAX_TASKS tasks, memory above PW_BROWSER_MAX_PSS_MB, crash.")
nl()
ts("Mail wait p90", [
    (q(0.9, "pw_mail_wait_seconds", "outcome"), "{{outcome}}")], 0, "s", w=12,
   desc="Waits for a verification mail, by how they ended (found, timeout, error).")
ts("Mail waits per second", [
    (f'sum by (outcome) (rate(pw_mail_wait_seconds_count[{R}]))', "{{outcome}}")], 12, "ops", w=12)
nl()
row("Fleet control (paused domains, circuit breakers)")
ts("Tasks held by paused domains", [
    (f'sum by (domain) (pw_tasks_held{{{DOM}}})', "{{domain}}")], 0, "short", w=6,
   desc=QUIET + "Tasks executors hold un-started because their domain is paused (summed over executors); "
        "they fail after PW_PAUSE_HOLD_SECS. What PwPausedDomainHoldingTasks watches.")
ts("Paused domains", [
    (f'max by (domain, by) (pw_domain_paused{{{DOM}}})', "{{domain}} by {{by}}")], 6, "bool_yes_no", w=6,
   desc=QUIET + "1 while a domain is paused by an operator (pwctl pause) or by its circuit breaker.")
ts("Circuit breaker state", [
    (f'max by (domain) (pw_breaker_state{{{DOM}}})', "{{domain}}")], 12, "short", w=6,
   desc=QUIET + "0 closed, 1 open (domain paused), 2 half-open (one probe task runs). Shared state: max over "
        "executors. What PwBreakerOpen watches.")
ts("Breaker openings", [
    (f'sum by (domain) (rate(pw_breaker_opened_total{{{DOM}}}[{R}]))', "{{domain}}")], 18, "ops", w=6,
   desc=QUIET + "Times a domain's breaker opened (or a failed probe re-opened it).")
nl()
row("Demo manager (simulator)")
ts("Simulator tasks by state", [('sum by (state) (pw_sim_tasks)', "{{state}}")], 0, "short", w=12,
   desc="Only in the demo: the simulated manager's view of its tasks.")
ts("Simulator requests", [
    (f'sum by (endpoint, status) (rate(pw_sim_requests_total[{R}]))', "{{endpoint}} {{status}}")],
   12, "reqps", w=12)
nl()
row("Process $instance", repeat="instance")
sel = '{instance=~"$instance"}'
ts("Tasks", [
    (f'sum by (outcome) (rate(pw_tasks_finished_total{sel}[{R}]))', "{{outcome}}")], 0, "ops", w=6)
ts("Slots", [
    (f'pw_tasks_in_flight{sel}', "in flight"),
    (f'pw_slots_free{sel}', "free slots")], 6, "short", w=6)
ts("Memory", [
    (f'pw_browser_memory_bytes{sel}', "browser PSS"),
    (f'process_resident_memory_bytes{sel}', "process RSS")], 12, "bytes", w=6)
ts("CPU", [
    (f'rate(process_cpu_seconds_total{sel}[{R}])', "cpu")], 18, "percentunit", w=6,
   desc="CPU seconds per second (1 = one core).")
nl()

dash = {
    "uid": "pw-fleet", "title": "Podcast worker fleet", "tags": ["podcast-worker"], "timezone": "utc",
    "schemaVersion": 39, "version": 2, "editable": True, "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "annotations": {"list": []},
    "templating": {"list": [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {"selected": True, "text": "Prometheus", "value": "pw-prometheus"}, "hide": 0,
         "refresh": 1, "regex": "", "options": []},
        {"name": "role", "label": "role", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(pw_build_info, role)', "refId": "role"},
         "definition": 'label_values(pw_build_info, role)',
         "refresh": 2, "multi": True, "includeAll": True,
         "current": {"selected": True, "text": "All", "value": "$__all"}, "sort": 1},
        {"name": "domain", "label": "domain", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(pw_tasks_finished_total, domain)', "refId": "domain"},
         "definition": 'label_values(pw_tasks_finished_total, domain)',
         "refresh": 2, "multi": True, "includeAll": True,
         "current": {"selected": True, "text": "All", "value": "$__all"}, "sort": 1},
        {"name": "instance", "label": "process", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(pw_build_info{role=~"$role"}, instance)', "refId": "instance"},
         "definition": 'label_values(pw_build_info{role=~"$role"}, instance)',
         "refresh": 2, "multi": True, "includeAll": True,
         "current": {"selected": True, "text": "All", "value": "$__all"}, "sort": 1}]},
    "panels": panels,
}
print(json.dumps(dash, indent=2))
