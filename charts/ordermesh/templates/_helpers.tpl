{{/*
Helpers shared by every template. The per-kind templates loop over the three services
(ordermesh.services); what differs between them (ports, probes, migrations) lives in
ordermesh.components, what a user may change in values.yaml under the service's key.
Most helpers take a dict: (dict "root" $ "name" "gateway").
*/}}

{{- define "ordermesh.services" -}}
{{- list "gateway" "orders" "notify" | toJson -}}
{{- end -}}

{{/* What the chart, not the user, decides per service. */}}
{{- define "ordermesh.components" -}}
gateway:
  prefix: GATEWAY
  migrate: false
  ports:
    - {name: http, containerPort: 8080, protocol: TCP}
  metrics: {port: 8080, portName: http, path: /metrics}
  probes:
    startup: {httpGet: {path: /healthz, port: http}}
    readiness: {httpGet: {path: /readyz, port: http}}
    liveness: {httpGet: {path: /healthz, port: http}}
orders:
  prefix: ORDERS
  migrate: true
  ports:
    - {name: grpc, containerPort: 50051, protocol: TCP, appProtocol: grpc}
    - {name: http-ops, containerPort: 8081, protocol: TCP, appProtocol: http}
  metrics: {port: 8081, portName: http-ops, path: /metrics}
  probes:
    # gRPC health answers only once the server listens (after the database and the
    # migrations); the named service mirrors readiness (database, draining).
    startup: {grpc: {port: 50051, service: ""}}
    readiness: {grpc: {port: 50051, service: ordermesh.orders.v1.OrdersService}}
    # Not gRPC health: orders mirrors readiness into the empty service too, so a
    # database outage would restart every replica. /healthz answers while the event
    # loop runs, the one thing a restart can fix.
    liveness: {httpGet: {path: /healthz, port: http-ops}}
notify:
  prefix: NOTIFY
  migrate: true
  ports:
    - {name: http, containerPort: 8082, protocol: TCP}
  metrics: {port: 8082, portName: http, path: /metrics}
  probes:
    startup: {httpGet: {path: /healthz, port: http}}
    readiness: {httpGet: {path: /readyz, port: http}}
    liveness: {httpGet: {path: /healthz, port: http}}
{{- end -}}

{{- define "ordermesh.component" -}}
{{- index (include "ordermesh.components" . | fromYaml) .name | toYaml -}}
{{- end -}}

{{- define "ordermesh.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ordermesh.selectorLabels" -}}
app.kubernetes.io/name: ordermesh
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "ordermesh.labels" -}}
{{ include "ordermesh.selectorLabels" . }}
app.kubernetes.io/part-of: ordermesh
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Labels of objects that belong to the release, not to one service. */}}
{{- define "ordermesh.releaseLabels" -}}
app.kubernetes.io/name: ordermesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: ordermesh
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ordermesh.image" -}}
{{- $image := (index .root.Values .name).image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (coalesce $image.tag .root.Values.image.tag .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "ordermesh.secretName" -}}
{{- coalesce (index .root.Values .name).existingSecret (include "ordermesh.fullname" .) -}}
{{- end -}}

{{/* "true" when a Prometheus-signal autoscaler owns the replica count. */}}
{{- define "ordermesh.signalScaled" -}}
{{- if and (has .name (list "gateway" "notify")) (ne .root.Values.autoscaling.engine "none") -}}true{{- end -}}
{{- end -}}

{{/* "true" when anything (signal or orders' CPU HPA) owns the replica count. */}}
{{- define "ordermesh.autoscaled" -}}
{{- if include "ordermesh.signalScaled" . -}}true
{{- else if and (eq .name "orders") .root.Values.orders.autoscaling.cpu.enabled (ne .root.Values.autoscaling.engine "none") -}}true
{{- end -}}
{{- end -}}

{{/*
The autoscaling signals, one template each: KEDA's trigger query and the HPA's
annotation (the prometheus-adapter rule must compute the same) come from here.
tests/test_autoscaling_signals.py evaluates exactly these against a real Prometheus.
*/}}
{{- define "ordermesh.gatewayQuery" -}}
{{- printf "sum(rate(ordermesh_http_server_request_duration_seconds_count{job=\"gateway\",namespace=\"%s\"}[%s]))" .Release.Namespace .Values.gateway.autoscaling.rateWindow -}}
{{- end -}}

{{- define "ordermesh.notifyQuery" -}}
{{- printf "sum(rabbitmq_detailed_queue_messages{queue=\"%s\",vhost=\"%s\"})" .Values.notify.queue .Values.rabbitmq.vhost -}}
{{- end -}}

{{/*
Seconds between SIGTERM's decision and SIGKILL: the preStop sleep, then the drain,
then closing pools and ports. Computed from the same values the pod gets as
<SERVICE>_DRAIN_SECONDS and the preStop sleep, so the two cannot disagree.
*/}}
{{- define "ordermesh.terminationGracePeriod" -}}
{{- $svc := index .root.Values .name -}}
{{- add (int $svc.preStopSleepSeconds) (int (ceil $svc.drainSeconds)) (int .root.Values.pod.shutdownMarginSeconds) -}}
{{- end -}}

{{/* Host headers the gateway serves: its Service's names, the ingress host, extras. */}}
{{- define "ordermesh.allowedHosts" -}}
{{- $svc := include "ordermesh.fullname" (dict "root" . "name" "gateway") -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- if .Values.ingress.enabled -}}
{{- $hosts = append $hosts .Values.ingress.host -}}
{{- end -}}
{{- concat $hosts .Values.gateway.allowedHosts | uniq | join "," -}}
{{- end -}}

{{/*
Non-secret environment of one service (its ConfigMap). The chart's own keys come
last, so they win; values.schema.json also refuses them in <service>.config.
*/}}
{{- define "ordermesh.config" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values .name -}}
{{- $c := include "ordermesh.component" . | fromYaml -}}
{{- $p := $c.prefix -}}
{{- $env := dict -}}
{{- range $key, $value := $svc.config -}}
{{- $_ := set $env $key (toString $value) -}}
{{- end -}}
{{- $_ := set $env (printf "%s_ENVIRONMENT" $p) $root.Values.environment -}}
{{- $_ = set $env (printf "%s_LOG_LEVEL" $p) $svc.logLevel -}}
{{- $_ = set $env (printf "%s_DRAIN_SECONDS" $p) (toString $svc.drainSeconds) -}}
{{- if $c.migrate -}}
{{- $_ = set $env (printf "%s_MIGRATE_ON_START" $p) "false" -}}
{{- end -}}
{{- if eq .name "gateway" -}}
{{- $_ = set $env "GATEWAY_HTTP_PORT" "8080" -}}
{{- $_ = set $env "GATEWAY_ORDERS_TARGET" (printf "%s:50051" (include "ordermesh.fullname" (dict "root" $root "name" "orders"))) -}}
{{- $_ = set $env "GATEWAY_NOTIFY_URL" (printf "http://%s:8082" (include "ordermesh.fullname" (dict "root" $root "name" "notify"))) -}}
{{- $_ = set $env "GATEWAY_ALLOWED_HOSTS" (include "ordermesh.allowedHosts" $root) -}}
{{- else if eq .name "orders" -}}
{{- $_ = set $env "ORDERS_GRPC_PORT" "50051" -}}
{{- $_ = set $env "ORDERS_HTTP_PORT" "8081" -}}
{{- else if eq .name "notify" -}}
{{- $_ = set $env "NOTIFY_HTTP_PORT" "8082" -}}
{{- $_ = set $env "NOTIFY_QUEUE" $svc.queue -}}
{{- end -}}
{{- if $root.Values.otel.enabled -}}
{{- $_ = set $env "OTEL_EXPORTER_OTLP_ENDPOINT" $root.Values.otel.endpoint -}}
{{- $_ = set $env "OTEL_EXPORTER_OTLP_PROTOCOL" $root.Values.otel.protocol -}}
{{- $_ = set $env "OTEL_TRACES_SAMPLER_ARG" (toString $root.Values.otel.samplerArg) -}}
{{- else -}}
{{- $_ = set $env "OTEL_SDK_DISABLED" "true" -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{/* Fail early on settings that would break a drain or a probe. */}}
{{- define "ordermesh.checks" -}}
{{- $webhook := float64 (default "5" (index .Values.notify.config "NOTIFY_WEBHOOK_TIMEOUT_SECONDS")) -}}
{{- if lt (float64 .Values.notify.drainSeconds) $webhook -}}
{{- fail (printf "notify.drainSeconds (%v) must be at least NOTIFY_WEBHOOK_TIMEOUT_SECONDS (%v): a webhook in progress at SIGTERM gets the drain time to finish" .Values.notify.drainSeconds $webhook) -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled -}}
{{- fail "enable metrics.serviceMonitor or metrics.podMonitor, not both: each target would be scraped twice" -}}
{{- end -}}
{{- end -}}

{{/* What the main and the migrate container share: security, environment, /tmp. */}}
{{- define "ordermesh.containerCommon" -}}
{{- $ctx := dict "root" .root "name" .name -}}
securityContext:
  allowPrivilegeEscalation: false
  privileged: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: [ALL]
envFrom:
  - configMapRef:
      name: {{ include "ordermesh.fullname" $ctx }}
  - secretRef:
      name: {{ include "ordermesh.secretName" $ctx }}
      optional: false
env:
  # servicekit.telemetry turns these into the traces' resource attributes.
  - name: K8S_POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  - name: K8S_NAMESPACE_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  - name: K8S_NODE_NAME
    valueFrom:
      fieldRef:
        fieldPath: spec.nodeName
  - name: K8S_DEPLOYMENT_NAME
    value: {{ include "ordermesh.fullname" $ctx }}
resources:
  {{- toYaml .resources | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}
