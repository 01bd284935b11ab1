// Monitoring as code: an action group, three scheduled-query alert rules on Application Insights
// and an Azure Monitor workbook, covering every stream (audit, signin, signin-noninteractive,
// signin-serviceprincipal, signin-managedidentity, provisioning, riskdetections, spriskdetections).
//
// Every rule reads the run report entra-export logs once per stream run (src/pipeline/report.rs): a
// JSON line on stdout or stderr whose field "run.report" holds the report as compact JSON, which the
// Functions host stores in the `traces` table (docs/operations.md, "Read the run report"). An
// invocation of AuditTimer or SignInTimer runs several streams at once and logs one such line for
// each; its ReturnValue is {"outcome": <worst>, "reports": [<one report per stream>]}, which the
// host does not put in `traces`, so the rules read the per-stream lines, never the ReturnValue. No
// query names a stream: each groups by the report's `job`, and the lag rule takes the list of
// enabled streams from `jobs`. The fields used here (job, invocation_id, outcome, reason,
// runs_without_progress, made_progress, checkpoint_after, backfill, records_written,
// records_fetched, records_reconciled, records_skipped, late_records, requests, throttled,
// reconcile) are checked against report.rs by scripts/check_infra.py.
//
//   failed runs          any run report with outcome "failed" (one alert per stream), or a failed
//                        AuditTimer/SignInTimer invocation that logged no failed report (the
//                        handler answers 500 when a stream failed, and that stream's report is
//                        already counted; a crash or a host timeout shows only in `requests`)
//   runs without progress  runs_without_progress >= noProgressRuns (3 = 45 minutes by default)
//   checkpoint lag       now minus the checkpoint of each enabled stream's latest run >
//                        checkpointLagMinutes, or no run report from it for six hours (timers
//                        stopped, app down, stream never run)

param location string
param tags object

@description('Prefix of the rule and workbook names (namePrefix-nameSuffix).')
param namePrefix string

@description('Resource id of the Application Insights component the rules query.')
param appInsightsId string

param alertEmails array

@secure()
param alertWebhookUrl string

@minValue(1)
param noProgressRuns int

@minValue(1)
param checkpointLagMinutes int

@description('The enabled streams, by the run report\'s job name (audit, signin, signin-noninteractive, …): each is expected to report at least every six hours.')
param jobs array

param deployAlerts bool

// The run report of each traces row, as a dynamic value.
var reports = '''traces
| where message has "run report"
| extend report = parse_json(tostring(parse_json(message)["run.report"]))
| where isnotempty(report.job)'''

// The enabled streams as a KQL datatable body: "audit", "signin", ...
var quotedJobs = [for j in jobs: '"${j}"']
var jobsTable = join(quotedJobs, ', ')

var failedRunsQuery = '''let reports = __REPORTS__
| where tostring(report.outcome) == "failed"
| project timestamp, job = tostring(report.job), reason = tostring(report.reason), invocation = tostring(report.invocation_id);
let reported = reports | where isnotempty(invocation) | distinct invocation;
let hostFailures = requests
| where operation_Name in ("AuditTimer", "SignInTimer") and success == false
| extend invocation = tostring(customDimensions["InvocationId"])
| where isempty(invocation) or invocation !in (reported)
| project timestamp, job = operation_Name, reason = strcat("invocation failed without a failed stream report (crash or host timeout?), result code ", resultCode), invocation;
union reports, hostFailures
| summarize failures = count(), reason = take_any(reason) by job'''

var noProgressQuery = '''__REPORTS__
| where toint(report.runs_without_progress) >= __RUNS__
| summarize stuck_runs = max(toint(report.runs_without_progress)), reason = take_any(tostring(report.reason)) by job = tostring(report.job)'''

var lagQuery = '''let jobs = datatable(job: string) [__JOBS__];
let latest = __REPORTS__
| where tobool(report.backfill) != true and isnotempty(tostring(report.checkpoint_after))
| extend checkpoint = todatetime(tostring(report.checkpoint_after))
| summarize arg_max(timestamp, checkpoint) by job = tostring(report.job);
jobs
| join kind=leftouter latest on job
| extend lag_minutes = iff(isnull(checkpoint), real(null), datetime_diff("second", now(), checkpoint) / 60.0)
| where isnull(checkpoint) or lag_minutes > __LAG__
| project job, checkpoint, lag_minutes'''

var receivers = {
  emails: [for (address, i) in alertEmails: {
    name: 'email-${i}'
    emailAddress: address
    useCommonAlertSchema: true
  }]
  webhooks: empty(alertWebhookUrl) ? [] : [
    {
      name: 'webhook'
      serviceUri: alertWebhookUrl
      useCommonAlertSchema: true
    }
  ]
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (deployAlerts) {
  name: '${namePrefix}-ag'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'entraexport'
    enabled: true
    emailReceivers: receivers.emails
    webhookReceivers: receivers.webhooks
  }
}

var rules = [
  {
    name: 'failed-runs'
    displayName: 'entra-export: failed runs'
    description: 'A stream\'s run failed (run report outcome "failed"; the dimension job is the stream), or an AuditTimer/SignInTimer invocation failed without a failed stream report (job is the function). Runbook: docs/operations.md, "Recover from a failed run".'
    severity: 1
    windowSize: 'PT15M'
    query: replace(failedRunsQuery, '__REPORTS__', reports)
  }
  {
    name: 'no-progress'
    displayName: 'entra-export: runs without progress'
    description: 'A stream made no progress for ${noProgressRuns} runs in a row (runs_without_progress). Runbook: docs/operations.md, "Runbook: a job without progress".'
    severity: 2
    windowSize: 'PT15M'
    query: replace(replace(noProgressQuery, '__REPORTS__', reports), '__RUNS__', string(noProgressRuns))
  }
  {
    name: 'checkpoint-lag'
    displayName: 'entra-export: checkpoint lag'
    description: 'An enabled stream\'s checkpoint is more than ${checkpointLagMinutes} minutes behind, or it reported no run for six hours. Runbook: docs/operations.md, "Runbook: a job without progress".'
    severity: 2
    windowSize: 'PT6H'
    query: replace(replace(replace(lagQuery, '__REPORTS__', reports), '__LAG__', string(checkpointLagMinutes)), '__JOBS__', jobsTable)
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = [for rule in rules: if (deployAlerts) {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: rule.windowSize
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'job'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

// The workbook: the latest run of every enabled stream, records per stream, run outcomes,
// checkpoint lag, recent problems.
var workbookQueries = {
  streams: '''let jobs = datatable(job: string) [__JOBS__];
let latest = __REPORTS__
| summarize arg_max(timestamp, report) by job = tostring(report.job);
jobs
| join kind=fullouter latest on job
| project stream = coalesce(job, job1), enabled = isnotempty(job), last_run = timestamp, outcome = tostring(report.outcome), reason = tostring(report.reason), checkpoint = tostring(report.checkpoint_after), lag_minutes = iff(tobool(report.backfill) == true or isempty(tostring(report.checkpoint_after)), real(null), datetime_diff("second", now(), todatetime(tostring(report.checkpoint_after))) / 60.0), runs_without_progress = toint(report.runs_without_progress), records_written = tolong(report.records_written), records_reconciled = tolong(report.records_reconciled), reconcile_done = tobool(report.reconcile.done)
| order by stream asc'''
  records: '''__REPORTS__
| summarize records_written = sum(tolong(report.records_written)), records_fetched = sum(tolong(report.records_fetched)), records_reconciled = sum(tolong(report.records_reconciled)) by bin(timestamp, 1h), job = tostring(report.job)
| order by timestamp asc'''
  outcomes: '''__REPORTS__
| summarize runs = count() by bin(timestamp, 1h), outcome = strcat(tostring(report.job), " ", tostring(report.outcome))
| order by timestamp asc'''
  lag: '''__REPORTS__
| where tobool(report.backfill) != true and isnotempty(tostring(report.checkpoint_after))
| extend lag_minutes = datetime_diff("second", timestamp, todatetime(tostring(report.checkpoint_after))) / 60.0
| project timestamp, job = tostring(report.job), lag_minutes
| order by timestamp asc'''
  problems: '''__REPORTS__
| where tostring(report.outcome) in ("failed", "partial") or toint(report.runs_without_progress) > 0 or isnotempty(tostring(report.reconcile.error))
| project timestamp, job = tostring(report.job), outcome = tostring(report.outcome), reason = tostring(report.reason), runs_without_progress = toint(report.runs_without_progress), checkpoint = tostring(report.checkpoint_after), late = tolong(report.late_records), reconciled = tolong(report.records_reconciled), reconcile_error = tostring(report.reconcile.error), requests = tolong(report.requests), throttled = tolong(report.throttled), invocation = tostring(report.invocation_id)
| order by timestamp desc
| take 100'''
}

var workbookItems = [
  {
    type: 1
    name: 'title'
    content: {
      json: '## entra-export\nEvery stream\'s latest run, records per stream, run outcomes and checkpoint lag, from the report each stream run logs (docs/operations.md). An AuditTimer or SignInTimer invocation runs several streams and logs one report per stream.'
    }
  }
  {
    type: 9
    name: 'parameters'
    content: {
      version: 'KqlParameterItem/1.0'
      parameters: [
        {
          id: 'b0c5f1a2-5e0a-4c55-9a52-3a3f2c9b7e01'
          version: 'KqlParameterItem/1.0'
          name: 'TimeRange'
          label: 'Time range'
          type: 4
          isRequired: true
          value: {
            durationMs: 86400000
          }
          typeSettings: {
            selectableValues: [
              {
                durationMs: 3600000
              }
              {
                durationMs: 86400000
              }
              {
                durationMs: 604800000
              }
              {
                durationMs: 2592000000
              }
            ]
          }
        }
      ]
    }
  }
  {
    type: 3
    name: 'streams'
    content: {
      version: 'KqlItem/1.0'
      title: 'Streams: the latest run of each (enabled = expected by this deployment)'
      query: replace(replace(workbookQueries.streams, '__REPORTS__', reports), '__JOBS__', jobsTable)
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'records-per-stream'
    content: {
      version: 'KqlItem/1.0'
      title: 'Records written, fetched and reconciled per stream, per hour'
      query: replace(workbookQueries.records, '__REPORTS__', reports)
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'timechart'
      size: 0
    }
  }
  {
    type: 3
    name: 'run-outcomes'
    content: {
      version: 'KqlItem/1.0'
      title: 'Run outcomes per stream, per hour'
      query: replace(workbookQueries.outcomes, '__REPORTS__', reports)
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'barchart'
      size: 0
    }
  }
  {
    type: 3
    name: 'checkpoint-lag'
    content: {
      version: 'KqlItem/1.0'
      title: 'Checkpoint lag at the end of each run (minutes)'
      query: replace(workbookQueries.lag, '__REPORTS__', reports)
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'linechart'
      size: 0
    }
  }
  {
    type: 3
    name: 'problems'
    content: {
      version: 'KqlItem/1.0'
      title: 'Failed, partial and stuck runs, and reconcile errors'
      query: replace(workbookQueries.problems, '__REPORTS__', reports)
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'table'
      size: 0
    }
  }
]

resource workbook 'Microsoft.Insights/workbooks@2022-04-01' = {
  name: guid(resourceGroup().id, namePrefix, 'entra-export-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'entra-export runs (${namePrefix})'
    category: 'workbook'
    sourceId: appInsightsId
    version: '1.0'
    serializedData: string({
      version: 'Notebook/1.0'
      items: workbookItems
      fallbackResourceIds: [
        appInsightsId
      ]
    })
  }
}

output workbookId string = workbook.id
output actionGroupId string = deployAlerts ? actionGroup.id : ''
