{{/* Chart name, cut to a valid label. */}}
{{- define "fleet-cleanup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-fleet-cleanup, or the release name when it already contains the chart name. */}}
{{- define "fleet-cleanup.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fleet-cleanup.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleet-cleanup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fleet-cleanup.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "fleet-cleanup.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: cleanup
{{- end }}

{{- define "fleet-cleanup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fleet-cleanup.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The run key: once per chart version unless runKey says otherwise (see values.yaml). */}}
{{- define "fleet-cleanup.runKey" -}}
{{- default (printf "%s-%s" .Chart.Name .Chart.Version) .Values.runKey }}
{{- end }}

{{/* <registry>/<repository>:<tag>; global.cattle.systemDefaultRegistry replaces the registry, as in Rancher's charts. */}}
{{- define "fleet-cleanup.image" -}}
{{- $registry := dig "cattle" "systemDefaultRegistry" "" (.Values.global | default dict) | default .Values.image.registry }}
{{- $repository := .Values.image.repository }}
{{- if $registry }}{{ $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}{{ end }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
A Go duration (values.schema.json has checked its form) in whole seconds, rounded up:
"1h30m" -> 5400. Sums each <number><unit> component.
*/}}
{{- define "fleet-cleanup.durationSeconds" -}}
{{- $unit := dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001 "us" 0.000001 "µs" 0.000001 "μs" 0.000001 "ns" 0.000000001 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]*\\.?[0-9]+(ns|us|µs|μs|ms|s|m|h)" (toString .) -1 }}
{{- $n := regexFind "^[0-9]*\\.?[0-9]+" . }}
{{- $total = addf $total (mulf (float64 $n) (get $unit (trimPrefix $n .))) }}
{{- end }}
{{- ceil $total | int }}
{{- end }}

{{/*
The job's own time budget must end before the Job's activeDeadlineSeconds: a Job killed at its
deadline records nothing, a run that spends its budget records `partial` and what it did.
Call with (dict "what" "hook" "budget" <duration> "deadline" <seconds>).
*/}}
{{- define "fleet-cleanup.checkBudget" -}}
{{- $budget := include "fleet-cleanup.durationSeconds" .budget | int }}
{{- if or (eq $budget 0) (ge $budget (int .deadline)) }}
{{- $message := printf "%s.timeBudget (%s) must be above 0 and below %s.activeDeadlineSeconds (%ds): the job must record `partial` before Kubernetes kills it" .what (toString .budget) .what (int .deadline) }}
{{- fail $message }}
{{- /* `helm lint` only logs a `fail` (lint mode); an include of a template that does not exist is an error there too, and carries the message. */}}
{{- include $message . }}
{{- end }}
{{- end }}

{{/* At least one phase: a job with nothing to do would still hold cluster-wide rights. */}}
{{- define "fleet-cleanup.checkPhases" -}}
{{- if not (or .Values.gitjobs.enabled .Values.oci.enabled) }}
{{- fail "gitjobs.enabled and oci.enabled are both false: nothing to clean; set enabled: false instead" }}
{{- end }}
{{- end }}

{{/*
The Pod template shared by the hook Job and the manual-rerun CronJob.
Call with (dict "root" $ "manual" true|false): a manual run passes --force (the marker says
`completed` for this run key after the automatic run) and has its own time budget.
*/}}
{{- define "fleet-cleanup.podTemplate" -}}
{{- $root := .root }}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "fleet-cleanup.labels" $root | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "fleet-cleanup.serviceAccountName" $root }}
  automountServiceAccountToken: true
  enableServiceLinks: false
  restartPolicy: Never
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  containers:
    - name: fleet-cleanup
      image: {{ include "fleet-cleanup.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      # The run's summary line, written by the job as it exits: `kubectl describe pod` and
      # `kubectl get pod -o jsonpath='{.status.containerStatuses[0].state.terminated.message}'`.
      terminationMessagePath: /dev/termination-log
      terminationMessagePolicy: FallbackToLogsOnError
      args:
        - {{ printf "--namespace=%s" $root.Release.Namespace | quote }}
        - {{ printf "--marker-name=%s" $v.markerName | quote }}
        - {{ printf "--time-budget=%s" (ternary $v.manual.timeBudget $v.hook.timeBudget .manual) | quote }}
        {{- if .manual }}
        - "--force"
        {{- end }}
        {{- if $v.hook.partialOk }}
        - "--partial-ok"
        {{- end }}
        {{- if $v.dryRun }}
        - "--dry-run"
        {{- end }}
        {{- if $v.gitjobs.enabled }}
        {{- with $v.gitjobs.namespaces }}
        - {{ printf "--job-namespaces=%s" (join "," .) | quote }}
        {{- end }}
        - {{ printf "--min-age=%s" $v.gitjobs.minAge | quote }}
        - {{ printf "--keep-last=%v" $v.gitjobs.keepLast | quote }}
        {{- if $v.gitjobs.deleteFailed }}
        - "--delete-failed"
        {{- end }}
        {{- else }}
        - "--skip-gitjobs"
        {{- end }}
        {{- if $v.oci.enabled }}
        - {{ printf "--oci-min-age=%s" $v.oci.minAge | quote }}
        {{- else }}
        - "--skip-oci"
        {{- end }}
        - {{ printf "--log-level=%s" $v.logLevel | quote }}
        - "--termination-log=/dev/termination-log"
        {{- range $v.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        # The marker's run key: once per chart version (see values.yaml runKey).
        - name: FLEET_CLEANUP_RUN_KEY
          value: {{ include "fleet-cleanup.runKey" $root | quote }}
        # The lock holder's name in the marker.
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
