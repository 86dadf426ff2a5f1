{{/*
The library API: named templates an app chart includes to put pgvigil into its own pod.
Each takes (dict "root" $ "values" .Values.pgvigil) in the app chart, or
(dict "root" $ "values" .Values) inside this chart. See README.md for a full example.

  pgvigil.initContainers     list items for spec.initContainers (native mode; "" in classic)
  pgvigil.containers         list items for spec.containers      (classic mode; "" in native)
  pgvigil.sidecar            the pgvigil container itself, as one list item (mode-aware)
  pgvigil.volumes            list items for spec.volumes (the config volume)
  pgvigil.podAnnotations     map entries: prometheus.io/* scrape annotations + config checksum
  pgvigil.appReadinessProbe  "readinessProbe:" block for the app container on /health/db
                             ("" unless appReadiness.enabled)
  pgvigil.podSecurityContext map entries for spec.securityContext
  pgvigil.terminationGracePeriodSeconds  the number
  pgvigil.configToml         the rendered pgvigil.toml
*/}}

{{- define "pgvigil.sidecar" -}}
{{- include "pgvigil.validate" . -}}
{{- $v := .values -}}
{{- $port := include "pgvigil.port" . | int -}}
- name: pgvigil
  image: {{ include "pgvigil.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if eq $v.mode "native" }}
  # Native sidecar (Kubernetes >= 1.29): starts before the app containers, which wait for the
  # startupProbe, and stops after them.
  restartPolicy: Always
  {{- end }}
  args:
    - --config
    - /etc/pgvigil/pgvigil.toml
    - --listen
    - {{ $v.config.settings.http.listen | toString | quote }}
    {{- range $v.extraArgs }}
    - {{ . | toString | quote }}
    {{- end }}
  env:
    - name: {{ include "pgvigil.urlEnvName" . }}
      valueFrom:
        secretKeyRef:
          name: {{ include "pgvigil.urlSecretName" . }}
          key: {{ include "pgvigil.urlSecretKey" . }}
    {{- if $v.neonApiKey.enabled }}
    - name: {{ $v.config.settings.neon.api_key_env }}
      valueFrom:
        secretKeyRef:
          name: {{ $v.neonApiKey.existingSecret }}
          key: {{ $v.neonApiKey.existingSecretKey }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: metrics
      containerPort: {{ $port }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /startupz
      port: {{ $port }}
    periodSeconds: {{ $v.probes.startup.periodSeconds }}
    timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
    failureThreshold: {{ $v.probes.startup.failureThreshold }}
  livenessProbe:
    httpGet:
      path: /livez
      port: {{ $port }}
    periodSeconds: {{ $v.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $port }}
    periodSeconds: {{ $v.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ $v.probes.readiness.failureThreshold }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: pgvigil-config
      mountPath: /etc/pgvigil
      readOnly: true
{{- end -}}

{{- define "pgvigil.initContainers" -}}
{{- if eq .values.mode "native" -}}
{{- include "pgvigil.sidecar" . -}}
{{- end -}}
{{- end -}}

{{- define "pgvigil.containers" -}}
{{- if eq .values.mode "classic" -}}
{{- include "pgvigil.sidecar" . -}}
{{- end -}}
{{- end -}}

{{- define "pgvigil.volumes" -}}
- name: pgvigil-config
  configMap:
    name: {{ include "pgvigil.configMapName" . }}
    items:
      - key: {{ include "pgvigil.configKey" . }}
        path: pgvigil.toml
{{- end -}}

{{- define "pgvigil.podAnnotations" -}}
{{- if .values.metrics.podAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "pgvigil.port" . | quote }}
prometheus.io/path: /metrics
{{ end -}}
{{- if not .values.config.existingConfigMap -}}
checksum/pgvigil-config: {{ include "pgvigil.configToml" . | sha256sum }}
{{- end -}}
{{- end -}}

{{- define "pgvigil.appReadinessProbe" -}}
{{- $a := .values.appReadiness -}}
{{- if $a.enabled -}}
readinessProbe:
  httpGet:
    path: /health/db
    port: {{ include "pgvigil.port" . | int }}
  periodSeconds: {{ $a.periodSeconds }}
  timeoutSeconds: {{ $a.timeoutSeconds }}
  failureThreshold: {{ $a.failureThreshold }}
  successThreshold: {{ $a.successThreshold }}
{{- end -}}
{{- end -}}

{{- define "pgvigil.podSecurityContext" -}}
{{- toYaml .values.podSecurityContext -}}
{{- end -}}

{{- define "pgvigil.terminationGracePeriodSeconds" -}}
{{- .values.terminationGracePeriodSeconds | int64 -}}
{{- end -}}

{{/*
pgvigil.toml from config.settings, sections in pgvigil's order, keys sorted. Null and empty-string
values are left out (pgvigil's default applies, which is the same); maps become sub-tables.
*/}}
{{- define "pgvigil.configToml" -}}
# pgvigil configuration, rendered by the pgvigil Helm chart from config.settings.
# The database URL is not here: pgvigil reads it from the environment variable
# {{ include "pgvigil.urlEnvName" . }}, set from a Secret.
{{- $settings := .values.config.settings -}}
{{- range $section := list "database" "pool" "probe" "http" "log" "sampling" "stats" "tracing" "neon" }}
{{- $table := index $settings $section | default dict }}

[{{ $section }}]
{{- $subtables := dict }}
{{- range $key, $value := $table }}
{{- if kindIs "map" $value }}
{{- $_ := set $subtables $key $value }}
{{- else if or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value "")) }}
{{- else }}
{{ $key }} = {{ include "pgvigil.tomlValue" (dict "key" (printf "%s.%s" $section $key) "value" $value) }}
{{- end }}
{{- end }}
{{- range $name, $sub := $subtables }}
{{- if $sub }}

[{{ $section }}.{{ $name }}]
{{- range $key, $value := $sub }}
{{ $key | toJson }} = {{ $value | toString | toJson }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{ end -}}
