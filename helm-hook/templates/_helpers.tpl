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

{{- define "fleet-cleanup.image" -}}
{{- $registry := dig "cattle" "systemDefaultRegistry" "" (.Values.global | default dict) }}
{{- $repository := .Values.image.repository }}
{{- if $registry }}{{ $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}{{ end }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
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
