{{/* The chart's name, overridable. */}}
{{- define "pynomaly-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of every object: the release name, with the chart's name unless it already contains it. */}}
{{- define "pynomaly-operator.fullname" -}}
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

{{/* Labels selecting the operator's pod. */}}
{{- define "pynomaly-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pynomaly-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "pynomaly-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pynomaly-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: pynomaly
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "pynomaly-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pynomaly-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The RBAC rules: exactly what the kopf handlers use (kopf lists and watches, patches annotations, finalizers
and status, posts events; peering and cluster scanning are off, so no rights on namespaces, CRDs or peerings). */}}
{{- define "pynomaly-operator.rules" -}}
- apiGroups: ["pynomaly.io"]
  resources: ["anomalydetectors"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["pynomaly.io"]
  resources: ["anomalydetectors/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
