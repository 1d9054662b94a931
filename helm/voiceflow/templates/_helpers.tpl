{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "voiceflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name. */}}
{{- define "voiceflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component: voiceflow.component (dict "root" $ "component" "operator"). */}}
{{- define "voiceflow.componentName" -}}
{{- printf "%s-%s" (include "voiceflow.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voiceflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "voiceflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voiceflow
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "operator"). */}}
{{- define "voiceflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voiceflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "voiceflow.componentLabels" -}}
{{ include "voiceflow.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Full image reference: (dict "root" $ "image" .Values.operator.image). */}}
{{- define "voiceflow.image" -}}
{{- $registry := .root.Values.image.registry -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}


{{- define "voiceflow.secretName" -}}
{{- printf "%s-secrets" (include "voiceflow.fullname" .) -}}
{{- end -}}

{{/* Where VOICEFLOW_DATABASE_URL comes from: a secretKeyRef. */}}
{{- define "voiceflow.databaseUrlRef" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret -}}
name: {{ .Values.externalDatabase.existingSecret }}
key: {{ .Values.externalDatabase.urlKey }}
{{- else -}}
name: {{ include "voiceflow.secretName" . }}
key: database-url
{{- end -}}
{{- end -}}

{{- define "voiceflow.redisUrlRef" -}}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.existingSecret -}}
name: {{ .Values.externalRedis.existingSecret }}
key: {{ .Values.externalRedis.urlKey }}
{{- else -}}
name: {{ include "voiceflow.secretName" . }}
key: redis-url
{{- end -}}
{{- end -}}

{{/* The pod-level security context, from the shared defaults. */}}
{{- define "voiceflow.podSecurityContext" -}}
securityContext:
{{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "voiceflow.containerSecurityContext" -}}
securityContext:
{{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{/* Fail early on value combinations the schema cannot express. */}}
{{- define "voiceflow.validate" -}}
{{- if and .Values.controlApi.enabled (not .Values.postgresql.enabled) (not .Values.externalDatabase.url) (not .Values.externalDatabase.existingSecret) -}}
{{- fail "postgresql.enabled=false needs externalDatabase.url or externalDatabase.existingSecret" -}}
{{- end -}}
{{- if and .Values.controlApi.enabled (not .Values.redis.enabled) (not .Values.externalRedis.url) (not .Values.externalRedis.existingSecret) -}}
{{- fail "redis.enabled=false needs externalRedis.url or externalRedis.existingSecret" -}}
{{- end -}}
{{- if and .Values.serviceAccount.create .Values.serviceAccount.name -}}
{{- fail "serviceAccount.name names one existing account for every component: set serviceAccount.create=false, or name each component's own (<component>.serviceAccount.name)" -}}
{{- end -}}
{{- if and (not .Values.serving.streaming.enabled) (not .Values.serving.kserve.enabled) -}}
{{- fail "enable at least one of serving.streaming and serving.kserve" -}}
{{- end -}}
{{- end -}}


{{/*
Helm-convention settings shared by the chart's own workloads (operator, control API, inference):
a top-level default that each component's values may override. Called with
(dict "root" $ "component" "inference" "values" .Values.inference).
*/}}

{{/* The component's ServiceAccount settings: its own keys win over the top-level serviceAccount. */}}
{{- define "voiceflow.serviceAccount" -}}
{{- $own := .values.serviceAccount | default dict -}}
{{- $create := .root.Values.serviceAccount.create -}}
{{- if hasKey $own "create" }}{{ $create = $own.create }}{{ end -}}
{{- $generated := include "voiceflow.componentName" (dict "root" .root "component" .component) -}}
{{- $name := $own.name | default .root.Values.serviceAccount.name | default (ternary $generated "default" $create) -}}
{{- $annotations := merge (deepCopy ($own.annotations | default dict)) (.root.Values.serviceAccount.annotations | default dict) -}}
{{- dict "create" $create "name" $name "annotations" $annotations | toJson -}}
{{- end -}}

{{- define "voiceflow.serviceAccountName" -}}
{{- (include "voiceflow.serviceAccount" . | fromJson).name -}}
{{- end -}}

{{/* The ServiceAccount object, when the chart creates it: (dict ... "automount" true|false). */}}
{{- define "voiceflow.serviceAccountObject" -}}
{{- $sa := include "voiceflow.serviceAccount" . | fromJson -}}
{{- if $sa.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $sa.name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "voiceflow.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
  {{- with $sa.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .automount }}
{{- end -}}
{{- end -}}

{{/* Pod annotations: the chart's own (dict "own" {...}), then podAnnotations top-level and per component. */}}
{{- define "voiceflow.podAnnotations" -}}
{{- $all := merge (deepCopy (.values.podAnnotations | default dict)) (deepCopy (.root.Values.podAnnotations | default dict)) (.own | default dict) -}}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Extra container env: top-level extraEnv, then the component's (a list of EnvVar objects). */}}
{{- define "voiceflow.extraEnv" -}}
{{- $env := concat (.root.Values.extraEnv | default list) (.values.extraEnv | default list) -}}
{{- with $env -}}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* nodeSelector, tolerations, affinity: the component's when set, else the top-level default. */}}
{{- define "voiceflow.scheduling" -}}
{{- with (.values.nodeSelector | default .root.Values.nodeSelector) -}}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.values.tolerations | default .root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.values.affinity | default .root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
