{{/* Names: 52 characters leave room for the -api/-worker/-migrate suffixes and pod hashes. */}}
{{- define "calgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "calgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "calgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "calgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "calgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "calgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: calgate
{{- end }}

{{- define "calgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "calgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "calgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where the pods find their Vault credentials and CA. */}}
{{- define "calgate.vaultTokenDir" -}}/var/run/secrets/calgate/vault-token{{- end }}
{{- define "calgate.approleDir" -}}/var/run/secrets/calgate/approle{{- end }}
{{- define "calgate.vaultCaDir" -}}/etc/calgate/vault-ca{{- end }}

{{/*
An environment value as a ConfigMap string. Helm reads every number in values as a float,
and toString would print 31536000 as 3.1536e+07: whole numbers are printed as integers.
*/}}
{{- define "calgate.envValue" -}}
{{- if kindIs "float64" . }}
{{- if eq . (floor .) }}{{ int64 . | toString | quote }}{{ else }}{{ toString . | quote }}{{ end }}
{{- else }}
{{- toString . | quote }}
{{- end }}
{{- end }}

{{/*
The ConfigMap's data: the settings the chart sets, then every value under `config:`.
Nothing secret: the database URL and the AppRole role id come from Secrets (calgate.secretEnv).
*/}}
{{- define "calgate.configData" -}}
CALGATE_HOST: "0.0.0.0"
CALGATE_PORT: "8080"
CALGATE_DATA_DIR: "/tmp/calgate"
CALGATE_SECRET_BACKEND: {{ .Values.secretBackend | quote }}
CALGATE_WORKER_MODE: {{ ternary "external" "inprocess" .Values.worker.enabled | quote }}
CALGATE_FORWARDED_ALLOW_IPS: {{ join "," .Values.ingress.trustedProxies | quote }}
CALGATE_VAULT_ADDR: {{ .Values.vault.address | quote }}
CALGATE_VAULT_AUTH: {{ .Values.vault.auth | quote }}
{{- if eq .Values.vault.auth "kubernetes" }}
CALGATE_VAULT_K8S_ROLE: {{ .Values.vault.kubernetes.role | quote }}
CALGATE_VAULT_K8S_MOUNT: {{ .Values.vault.kubernetes.mount | quote }}
CALGATE_VAULT_K8S_TOKEN_FILE: {{ printf "%s/token" (include "calgate.vaultTokenDir" .) | quote }}
{{- else }}
CALGATE_VAULT_SECRET_ID_FILE: {{ printf "%s/secret-id" (include "calgate.approleDir" .) | quote }}
{{- end }}
{{- if .Values.vault.caConfigMap.name }}
CALGATE_VAULT_CA_FILE: {{ printf "%s/ca.crt" (include "calgate.vaultCaDir" .) | quote }}
{{- end }}
{{- range $name, $value := .Values.config }}
{{ $name }}: {{ include "calgate.envValue" $value }}
{{- end }}
{{- end }}

{{/* Environment from Secrets. `vault`: also the AppRole role id (not for the migration Job). */}}
{{- define "calgate.secretEnv" -}}
{{- $ := .root -}}
- name: CALGATE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.database.existingSecret }}
      key: {{ $.Values.database.urlKey }}
{{- if and .vault (eq $.Values.vault.auth "approle") }}
- name: CALGATE_VAULT_ROLE_ID
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.vault.approle.existingSecret }}
      key: {{ $.Values.vault.approle.roleIdKey }}
{{- end }}
{{- with $.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes: a writable /tmp; with `vault`, the Vault credential and CA. */}}
{{- define "calgate.volumes" -}}
{{- $ := .root -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $.Values.tmpSizeLimit }}
{{- if .vault }}
{{- if eq $.Values.vault.auth "kubernetes" }}
- name: vault-token
  projected:
    sources:
      - serviceAccountToken:
          audience: {{ $.Values.vault.kubernetes.audience | quote }}
          expirationSeconds: {{ $.Values.vault.kubernetes.expirationSeconds }}
          path: token
{{- else }}
- name: vault-approle
  secret:
    secretName: {{ $.Values.vault.approle.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $.Values.vault.approle.secretIdKey }}
        path: secret-id
{{- end }}
{{- if $.Values.vault.caConfigMap.name }}
- name: vault-ca
  configMap:
    name: {{ $.Values.vault.caConfigMap.name }}
    items:
      - key: {{ $.Values.vault.caConfigMap.key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "calgate.volumeMounts" -}}
{{- $ := .root -}}
- name: tmp
  mountPath: /tmp
{{- if .vault }}
{{- if eq $.Values.vault.auth "kubernetes" }}
- name: vault-token
  mountPath: {{ include "calgate.vaultTokenDir" $ }}
  readOnly: true
{{- else }}
- name: vault-approle
  mountPath: {{ include "calgate.approleDir" $ }}
  readOnly: true
{{- end }}
{{- if $.Values.vault.caConfigMap.name }}
- name: vault-ca
  mountPath: {{ include "calgate.vaultCaDir" $ }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/* Checks the schema cannot express (relations between values). */}}
{{- define "calgate.validate" -}}
{{- $scaling := .Values.api.autoscaling }}
{{- if and $scaling.enabled (lt (int $scaling.maxReplicas) (int $scaling.minReplicas)) }}
{{- fail (printf "api.autoscaling.maxReplicas (%v) must be at least api.autoscaling.minReplicas (%v)" $scaling.maxReplicas $scaling.minReplicas) }}
{{- end }}
{{- if and $scaling.enabled (not $scaling.targetCPUUtilizationPercentage) (not $scaling.targetMemoryUtilizationPercentage) }}
{{- fail "api.autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" }}
{{- end }}
{{- $pdb := .Values.api.podDisruptionBudget }}
{{- $hasMin := not (kindIs "invalid" $pdb.minAvailable) }}
{{- $hasMax := not (kindIs "invalid" $pdb.maxUnavailable) }}
{{- if and $pdb.enabled (eq $hasMin $hasMax) }}
{{- fail "api.podDisruptionBudget: set exactly one of minAvailable and maxUnavailable (null the other)" }}
{{- end }}
{{- $grace := float64 (.Values.config.CALGATE_SHUTDOWN_GRACE | default 0) }}
{{- if le (float64 .Values.api.terminationGracePeriodSeconds) (addf $grace .Values.api.preStopSleepSeconds) }}
{{- fail (printf "api.terminationGracePeriodSeconds (%v) must exceed api.preStopSleepSeconds + config.CALGATE_SHUTDOWN_GRACE (%v)" .Values.api.terminationGracePeriodSeconds (addf $grace .Values.api.preStopSleepSeconds)) }}
{{- end }}
{{- if and .Values.worker.enabled (le (float64 .Values.worker.terminationGracePeriodSeconds) $grace) }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%v) must exceed config.CALGATE_SHUTDOWN_GRACE (%v)" .Values.worker.terminationGracePeriodSeconds $grace) }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) (not .Values.config.CALGATE_PUBLIC_URL) }}
{{- fail "ingress.host or config.CALGATE_PUBLIC_URL is required when ingress.enabled" }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress: DNS, then the rules from values. */}}
{{- define "calgate.egressRules" -}}
# DNS, wherever the cluster's resolver runs.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{ toYaml .Values.networkPolicy.egress }}
{{- end }}
