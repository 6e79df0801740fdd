{{/* Names, labels, the image, the store and the checks of cross-field rules the values schema cannot state. */}}

{{- define "pynomaly.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name prefix of every object: release-chart, or the release name alone when it holds the chart name. */}}
{{- define "pynomaly.fullname" -}}
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

{{- define "pynomaly.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "pynomaly.labels" -}}
helm.sh/chart: {{ include "pynomaly.chart" . }}
{{ include "pynomaly.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pynomaly
{{- end }}

{{/* Labels that select the release's pods (all of them: server, Ray head and Ray workers). */}}
{{- define "pynomaly.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pynomaly.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The component whose pod serves the platform's ports: the server (embedded) or the Ray head (the Gateway's
node, see rayservice.yaml). */}}
{{- define "pynomaly.servingComponent" -}}
{{- if eq .Values.engine "ray" }}ray-head{{ else }}server{{ end }}
{{- end }}

{{/* Labels that select the pods behind the Service. */}}
{{- define "pynomaly.servingSelectorLabels" -}}
{{ include "pynomaly.selectorLabels" . }}
app.kubernetes.io/component: {{ include "pynomaly.servingComponent" . }}
{{- end }}

{{- define "pynomaly.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "pynomaly.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pynomaly.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The store argument: s3://bucket/prefix, or the mounted directory. */}}
{{- define "pynomaly.store" -}}
{{- if eq .Values.store.type "s3" }}
{{- printf "s3://%s/%s" .Values.store.s3.bucket (.Values.store.s3.prefix | trimAll "/") | trimSuffix "/" }}
{{- else }}
{{- .Values.store.mountPath }}
{{- end }}
{{- end }}

{{/* "true" when every pod of the release sees the same store: S3, or a ReadWriteMany claim. */}}
{{- define "pynomaly.sharedStore" -}}
{{- if or (eq .Values.store.type "s3") (and (eq .Values.store.type "pvc") (has "ReadWriteMany" .Values.store.pvc.accessModes)) }}true{{ end }}
{{- end }}

{{- define "pynomaly.claimName" -}}
{{- .Values.store.pvc.existingClaim | default (printf "%s-store" (include "pynomaly.fullname" .)) }}
{{- end }}

{{/* Rules across values, each failing with what to change and why; included once, by configmap.yaml (always
rendered). */}}
{{- define "pynomaly.checks" -}}
{{- $v := .Values }}
{{- if and (eq $v.store.type "s3") (not $v.store.s3.bucket) }}
{{- fail "store.s3.bucket is required with store.type=s3" }}
{{- end }}
{{- if and (eq $v.store.type "s3") (not $v.store.s3.existingSecret) (not $v.store.s3.useServiceAccountCredentials) }}
{{- fail "store.s3.existingSecret is required with store.type=s3: name the Secret holding the credentials (keys store.s3.accessKeyIdKey, store.s3.secretAccessKeyKey), or set store.s3.useServiceAccountCredentials=true for a pod role" }}
{{- end }}
{{- if and (eq $v.engine "embedded") (ne $v.store.type "s3") (or (gt (int $v.replicaCount) 1) $v.autoscaling.enabled) }}
{{- fail (printf "replicaCount=%v / autoscaling.enabled=%v need store.type=s3 with engine=embedded: a store.type=%s store is a local directory, safe for one writer process only (and a ReadWriteOnce volume attaches to one node), so each replica would write its own or a shared directory unsafely" $v.replicaCount $v.autoscaling.enabled $v.store.type) }}
{{- end }}
{{- if and (eq $v.engine "ray") (gt (int $v.ray.worker.maxReplicas) 0) (not (include "pynomaly.sharedStore" .)) }}
{{- fail (printf "engine=ray with workers (ray.worker.maxReplicas=%v) needs a store every Ray node reads: store.type=s3, or store.type=pvc with store.pvc.accessModes [ReadWriteMany] (store.type=%s is not shared); or set ray.worker.maxReplicas=0 to run on the head alone" $v.ray.worker.maxReplicas $v.store.type) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if or (gt (int $v.ray.worker.minReplicas) (int $v.ray.worker.maxReplicas)) (gt (int $v.ray.worker.replicas) (int $v.ray.worker.maxReplicas)) (lt (int $v.ray.worker.replicas) (int $v.ray.worker.minReplicas)) }}
{{- fail "ray.worker: minReplicas <= replicas <= maxReplicas is required" }}
{{- end }}
{{- if gt (int $v.ray.app.minReplicas) (int $v.ray.app.maxReplicas) }}
{{- fail "ray.app.minReplicas must not exceed ray.app.maxReplicas" }}
{{- end }}
{{- if le (float64 $v.terminationGracePeriodSeconds) (float64 $v.server.graceSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds=%v must exceed server.graceSeconds=%v: Kubernetes would kill the server before its graceful shutdown ends" $v.terminationGracePeriodSeconds $v.server.graceSeconds) }}
{{- end }}
{{- if le (float64 $v.server.graceSeconds) (float64 $v.server.shutdownDelaySeconds) }}
{{- fail (printf "server.graceSeconds=%v must exceed server.shutdownDelaySeconds=%v" $v.server.graceSeconds $v.server.shutdownDelaySeconds) }}
{{- end }}
{{- if and $v.tls.enabled (not $v.tls.secretName) }}
{{- fail "tls.secretName is required with tls.enabled=true" }}
{{- end }}
{{- if and (or $v.metrics.serviceMonitor.enabled $v.metrics.prometheusRule.enabled) (not $v.metrics.enabled) }}
{{- fail "metrics.serviceMonitor and metrics.prometheusRule need metrics.enabled=true (the server serves no /metrics otherwise)" }}
{{- end }}
{{- if and $v.tls.clientAuth (not $v.tls.enabled) }}
{{- fail "tls.clientAuth needs tls.enabled=true (mutual TLS is TLS first)" }}
{{- end }}
{{- $ports := list $v.ports.grpc }}
{{- if and $v.tls.enabled (eq $v.engine "embedded") }}{{ $ports = append $ports $v.ports.health }}{{ end }}
{{- if $v.http.enabled }}{{ $ports = append $ports $v.ports.http }}{{ end }}
{{- if $v.metrics.enabled }}{{ $ports = append $ports $v.ports.metrics }}{{ end }}
{{- if ne (len $ports) (len (uniq $ports)) }}
{{- fail (printf "ports.grpc, ports.http, ports.metrics and ports.health must differ (got %v)" $ports) }}
{{- end }}
{{- end }}

{{/* Pod annotations: the user's, plus the ConfigMap's checksum so that a configuration change rolls the pods. */}}
{{- define "pynomaly.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Environment of every platform container: non-secret settings from the ConfigMap, S3 credentials from the
Secret reference, the user's extra variables. */}}
{{- define "pynomaly.envFrom" -}}
- configMapRef:
    name: {{ include "pynomaly.fullname" . }}
{{- end }}

{{- define "pynomaly.env" -}}
{{- $s3 := .Values.store.s3 }}
{{- if and (eq .Values.store.type "s3") $s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: {{ $s3.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: {{ $s3.secretAccessKeyKey }}
{{- if $s3.sessionTokenKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: {{ $s3.sessionTokenKey }}
{{- end }}
{{- end }}
{{- if .Values.otel.endpoint }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- $attributes := printf "k8s.namespace.name=%s,k8s.pod.name=$(POD_NAME)" .Release.Namespace }}
{{- with .Values.otel.resourceAttributes }}{{ $attributes = printf "%s,%s" $attributes . }}{{ end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ $attributes | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes shared by every platform pod; the mounts below match them by name. */}}
{{- define "pynomaly.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if eq .Values.store.type "emptyDir" }}
- name: store
  emptyDir: {}
{{- else if eq .Values.store.type "pvc" }}
- name: store
  persistentVolumeClaim:
    claimName: {{ include "pynomaly.claimName" . }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- if .Values.auth.existingSecret }}
- name: auth
  secret:
    secretName: {{ .Values.auth.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "pynomaly.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if ne .Values.store.type "s3" }}
- name: store
  mountPath: {{ .Values.store.mountPath }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/pynomaly/tls
  readOnly: true
{{- end }}
{{- if .Values.auth.existingSecret }}
- name: auth
  mountPath: /etc/pynomaly/auth
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Scheduling settings shared by every platform pod. */}}
{{- define "pynomaly.podScheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The security flags of `pynomaly serve` (the Ray engine's args take the same files: rayservice.yaml). */}}
{{- define "pynomaly.securityArgs" -}}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/pynomaly/tls/tls.crt
- --tls-key=/etc/pynomaly/tls/tls.key
{{- if .Values.tls.clientAuth }}
- --tls-client-ca=/etc/pynomaly/tls/ca.crt
{{- end }}
- --health-listen=0.0.0.0:{{ .Values.ports.health }}
{{- end }}
{{- if .Values.auth.existingSecret }}
- --auth-tokens=/etc/pynomaly/auth/{{ .Values.auth.key }}
- --auth-reflection={{ .Values.auth.reflection }}
{{- end }}
{{- end }}

{{/* The port the kubelet's gRPC probes ask: the plaintext health-only one when the API port speaks TLS. */}}
{{- define "pynomaly.probePort" -}}
{{- if .Values.tls.enabled }}{{ .Values.ports.health }}{{ else }}{{ .Values.ports.grpc }}{{ end }}
{{- end }}
