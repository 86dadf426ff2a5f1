{{/*
Internal helpers. Every helper takes a dict context:
  (dict "root" $ "values" <pgvigil values>)
where <pgvigil values> is .Values inside this chart and .Values.pgvigil in an app chart that
depends on it. Names never use .Chart (the app chart's .Chart is its own), so they come out
identical in both contexts.
*/}}

{{- define "pgvigil.name" -}}
{{- default "pgvigil" .values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pgvigil.fullname" -}}
{{- if .values.fullnameOverride -}}
{{- .values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "pgvigil.name" . -}}
{{- if contains $name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* pgvigil's version: this chart's appVersion, also when rendered from a parent chart. */}}
{{- define "pgvigil.appVersion" -}}
{{- if eq .root.Chart.Name "pgvigil" -}}
{{- .root.Chart.AppVersion -}}
{{- else if and .root.Subcharts (hasKey .root.Subcharts "pgvigil") -}}
{{- (index .root.Subcharts "pgvigil").Chart.AppVersion -}}
{{- else -}}
{{- fail "pgvigil: cannot tell pgvigil's version from this chart; set image.tag" -}}
{{- end -}}
{{- end -}}

{{- define "pgvigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgvigil.name" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "pgvigil.labels" -}}
helm.sh/chart: {{ printf "pgvigil-%s" (include "pgvigil.chartVersion" .) | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pgvigil.selectorLabels" . }}
app.kubernetes.io/version: {{ include "pgvigil.appVersion" . | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pgvigil
{{- end -}}

{{/*
Labels for one object: the chart's (pgvigil.labels), then `extra` (chart keys such as the
component), then the user's map `user` (from values key `what`), as one map with no duplicate
keys. The user's value wins, except for the selector labels and the keys of `protected`: changing
one of those fails with a message naming the value. Renders YAML map entries.
  (dict "ctx" $ctx "user" .Values.podLabels "what" "podLabels" "extra" (dict ...) "protected" (dict ...)
        "hint" "how to change a protected label instead")
*/}}
{{- define "pgvigil.mergedLabels" -}}
{{- $labels := include "pgvigil.labels" .ctx | fromYaml -}}
{{- $fixed := include "pgvigil.selectorLabels" .ctx | fromYaml -}}
{{- range $k, $v := (.extra | default dict) }}{{ $_ := set $labels $k (toString $v) }}{{ end -}}
{{- range $k, $v := (.protected | default dict) }}{{ $_ := set $labels $k (toString $v) }}{{ $_ := set $fixed $k (toString $v) }}{{ end -}}
{{- $what := .what -}}
{{- $hint := .hint | default "use nameOverride to change the name" -}}
{{- range $k, $v := (.user | default dict) -}}
{{- if and (hasKey $fixed $k) (ne (toString $v) (index $fixed $k)) -}}
{{- fail (printf "pgvigil: %s.%s is %q, but the chart sets the label %s to %q (objects are selected by it); remove it from %s (%s)." $what $k (toString $v) $k (index $fixed $k) $what $hint) -}}
{{- end -}}
{{- $_ := set $labels $k (toString $v) -}}
{{- end -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* The demo pod's annotations: pgvigil.podAnnotations merged with podAnnotations (the user's
value wins), one map without duplicate keys; "" when empty. */}}
{{- define "pgvigil.mergedPodAnnotations" -}}
{{- $a := include "pgvigil.podAnnotations" .ctx | fromYaml | default dict -}}
{{- range $k, $v := (.user | default dict) }}{{ $_ := set $a $k (toString $v) }}{{ end -}}
{{- if $a }}{{ toYaml $a }}{{ end -}}
{{- end -}}

{{/* A Prometheus duration ("30s", "1m30s", "1h", "500ms") in milliseconds. */}}
{{- define "pgvigil.promDurationMillis" -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+(ms|[smhdwy])" (toString .) -1 -}}
{{- $unit := regexFind "(ms|[smhdwy])$" . -}}
{{- $total = add $total (mul (trimSuffix $unit . | int64) (index $units $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* Fails unless `key`.scrapeTimeout <= `key`.interval (Prometheus refuses the target). */}}
{{- define "pgvigil.checkScrapeTimeout" -}}
{{- $interval := include "pgvigil.promDurationMillis" .monitor.interval | int64 -}}
{{- $timeout := include "pgvigil.promDurationMillis" .monitor.scrapeTimeout | int64 -}}
{{- if gt $timeout $interval -}}
{{- fail (printf "pgvigil: %s.scrapeTimeout (%s) is longer than %s.interval (%s); Prometheus refuses a scrape timeout above the interval. Lower the timeout or raise the interval." .key .monitor.scrapeTimeout .key .monitor.interval) -}}
{{- end -}}
{{- end -}}

{{- define "pgvigil.chartVersion" -}}
{{- if eq .root.Chart.Name "pgvigil" -}}
{{- .root.Chart.Version -}}
{{- else if and .root.Subcharts (hasKey .root.Subcharts "pgvigil") -}}
{{- (index .root.Subcharts "pgvigil").Chart.Version -}}
{{- else -}}
unknown
{{- end -}}
{{- end -}}

{{- define "pgvigil.image" -}}
{{- $img := .values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default (include "pgvigil.appVersion" .) $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* The port of config.settings.http.listen ("0.0.0.0:9188", "[::]:9188"). */}}
{{- define "pgvigil.port" -}}
{{- $listen := .values.config.settings.http.listen | toString -}}
{{- $port := regexFind "[0-9]+$" $listen -}}
{{- if not $port -}}
{{- fail (printf "pgvigil: config.settings.http.listen %q has no port; use HOST:PORT, e.g. 0.0.0.0:9188" $listen) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{- define "pgvigil.configMapName" -}}
{{- if .values.config.existingConfigMap -}}
{{- .values.config.existingConfigMap -}}
{{- else -}}
{{- printf "%s-config" (include "pgvigil.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pgvigil.configKey" -}}
{{- if .values.config.existingConfigMap -}}
{{- .values.config.existingConfigMapKey -}}
{{- else -}}
pgvigil.toml
{{- end -}}
{{- end -}}

{{/* The Secret and key the database URL comes from. */}}
{{- define "pgvigil.urlSecretName" -}}
{{- if .values.database.allowPlaintextUrl -}}
{{- printf "%s-database" (include "pgvigil.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .values.database.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "pgvigil.urlSecretKey" -}}
{{- if .values.database.allowPlaintextUrl -}}url{{- else -}}{{ .values.database.existingSecretKey }}{{- end -}}
{{- end -}}

{{- define "pgvigil.urlEnvName" -}}
{{- default "PGVIGIL_DATABASE_URL" .values.config.settings.database.url_env -}}
{{- end -}}

{{/* A simple duration ("5s", "1500ms", "2m") in milliseconds; "" for combined forms. */}}
{{- define "pgvigil.durationMillis" -}}
{{- $d := . | toString -}}
{{- if regexMatch "^[0-9]+ms$" $d -}}
{{- trimSuffix "ms" $d | int64 -}}
{{- else if regexMatch "^[0-9]+s$" $d -}}
{{- mul (trimSuffix "s" $d | int64) 1000 -}}
{{- else if regexMatch "^[0-9]+m$" $d -}}
{{- mul (trimSuffix "m" $d | int64) 60000 -}}
{{- end -}}
{{- end -}}

{{/*
Cross-field checks the schema cannot express clearly. Renders nothing; fails with a message
naming the value and the fix.
*/}}
{{- define "pgvigil.validate" -}}
{{- $v := .values -}}
{{- if and $v.database.url (not $v.database.allowPlaintextUrl) -}}
{{- fail "pgvigil: database.url is set but database.allowPlaintextUrl is false. Put the URL in a Secret (kubectl create secret generic pgvigil-database --from-literal=url=...) and set database.existingSecret, or set database.allowPlaintextUrl=true for a throw-away cluster." -}}
{{- end -}}
{{- if and $v.database.allowPlaintextUrl (not $v.database.url) -}}
{{- fail "pgvigil: database.allowPlaintextUrl is true but database.url is empty; set database.url or use database.existingSecret." -}}
{{- end -}}
{{- if and (not $v.database.allowPlaintextUrl) (not $v.database.existingSecret) -}}
{{- fail "pgvigil: database.existingSecret is empty; name the Secret holding the database URL (key database.existingSecretKey)." -}}
{{- end -}}
{{- if and $v.neonApiKey.enabled (not $v.neonApiKey.existingSecret) -}}
{{- fail "pgvigil: neonApiKey.enabled is true but neonApiKey.existingSecret is empty; name the Secret holding the Neon API key." -}}
{{- end -}}
{{- $samplingUrl := $v.config.settings.neon.sampling_url | default "" | toString -}}
{{- if or (regexMatch "://[^/@]*:[^/@]*@" $samplingUrl) (regexMatch "(^|\\s)password\\s*=" $samplingUrl) -}}
{{- fail "pgvigil: config.settings.neon.sampling_url contains a password, and it would land in the ConfigMap; drop the password and give it to libpq as PGPASSWORD via extraEnv (secretKeyRef)." -}}
{{- end -}}
{{- $listen := $v.config.settings.http.listen | toString -}}
{{- if regexMatch "^(127\\.|localhost:|\\[::1\\]:)" $listen -}}
{{- fail (printf "pgvigil: config.settings.http.listen %q is loopback-only, so the kubelet's probes and Prometheus cannot reach it; use 0.0.0.0:PORT or [::]:PORT." $listen) -}}
{{- end -}}
{{- if not (has $v.mode (list "native" "classic")) -}}
{{- fail (printf "pgvigil: mode %q is not valid; use native or classic." (toString $v.mode)) -}}
{{- end -}}
{{- if and (eq $v.mode "native") (semverCompare "<1.29.0-0" .root.Capabilities.KubeVersion.Version) -}}
{{- fail (printf "pgvigil: mode native needs Kubernetes >= 1.29 (native sidecar containers), this is %s; set mode=classic (or pass --kube-version)." .root.Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- $shutdownMs := include "pgvigil.durationMillis" $v.config.settings.http.shutdown_timeout -}}
{{- if and $shutdownMs (le (mul (int64 $v.terminationGracePeriodSeconds) 1000) (int64 $shutdownMs)) -}}
{{- fail (printf "pgvigil: terminationGracePeriodSeconds (%v) must exceed config.settings.http.shutdown_timeout (%s), or the kubelet kills pgvigil mid-shutdown; raise it." $v.terminationGracePeriodSeconds $v.config.settings.http.shutdown_timeout) -}}
{{- end -}}
{{- end -}}

{{/* One TOML value. Helm holds every number as float64, so integers are cast explicitly. */}}
{{- define "pgvigil.tomlValue" -}}
{{- $v := .value -}}
{{- if kindIs "bool" $v -}}
{{- $v -}}
{{- else if kindIs "string" $v -}}
{{- $v | toJson -}}
{{- else if or (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v) -}}
{{- if has .key (list "tracing.sample_ratio") -}}
{{- $s := printf "%v" $v -}}
{{- if regexMatch "^-?[0-9]+$" $s -}}{{ $s }}.0{{- else -}}{{ $s }}{{- end -}}
{{- else -}}
{{- int64 $v -}}
{{- end -}}
{{- else -}}
{{- fail (printf "pgvigil: config.settings.%s has an unsupported type (%s)" .key (kindOf $v)) -}}
{{- end -}}
{{- end -}}
