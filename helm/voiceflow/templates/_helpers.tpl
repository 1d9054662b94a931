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
{{- if and (not .Values.serving.streaming.enabled) (not .Values.serving.kserve.enabled) -}}
{{- fail "enable at least one of serving.streaming and serving.kserve" -}}
{{- end -}}
{{- end -}}

