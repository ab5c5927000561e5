#!/bin/sh
# Prepare Vault (or OpenBao) for Calgate with the Kubernetes auth method (vault.auth=kubernetes,
# the chart's default): engines, transit key and policy (vault-common.sh), then a role bound
# to the release's service account and to the audience of the token the chart projects.
#
#   export VAULT_ADDR=https://vault.example:8200 VAULT_TOKEN=<an operator's token>
#   CALGATE_NAMESPACE=calendar CALGATE_SERVICE_ACCOUNT=calgate sh vault-role-kubernetes.sh
#
# Environment, with defaults (and those of vault-common.sh):
#   CALGATE_NAMESPACE            calgate   namespace of the Helm release
#   CALGATE_SERVICE_ACCOUNT      calgate   the chart's service account (the release's full name,
#                                          or serviceAccount.name)
#   CALGATE_VAULT_K8S_MOUNT      kubernetes  = vault.kubernetes.mount
#   CALGATE_VAULT_K8S_ROLE       calgate     = vault.kubernetes.role
#   CALGATE_VAULT_K8S_AUDIENCE   vault       = vault.kubernetes.audience
#   TOKEN_TTL / TOKEN_MAX_TTL    1h / 24h    Calgate logs in again when its token expires
#   KUBERNETES_HOST              (unset)     if set, also configure the auth method, e.g.
#                                            https://kubernetes.default.svc when Vault runs
#                                            in the cluster (its own service account then
#                                            reviews tokens and needs system:auth-delegator)
#   KUBERNETES_CA_CERT           (unset)     PEM file of the cluster's CA, with KUBERNETES_HOST
set -eu
. "$(cd "$(dirname "$0")" && pwd)/vault-common.sh"

namespace="${CALGATE_NAMESPACE:-calgate}"
service_account="${CALGATE_SERVICE_ACCOUNT:-calgate}"
mount="${CALGATE_VAULT_K8S_MOUNT:-kubernetes}"
role="${CALGATE_VAULT_K8S_ROLE:-calgate}"
audience="${CALGATE_VAULT_K8S_AUDIENCE:-vault}"

setup_engines_and_policy
enable_auth kubernetes "$mount"
if [ -n "${KUBERNETES_HOST:-}" ]; then
    say "auth: configuring $mount/ for $KUBERNETES_HOST"
    if [ -n "${KUBERNETES_CA_CERT:-}" ]; then
        "$cli" write "auth/$mount/config" kubernetes_host="$KUBERNETES_HOST" \
            kubernetes_ca_cert=@"$KUBERNETES_CA_CERT"
    else
        "$cli" write "auth/$mount/config" kubernetes_host="$KUBERNETES_HOST"
    fi
fi
say "role: $role for $namespace/$service_account, audience $audience"
"$cli" write "auth/$mount/role/$role" \
    bound_service_account_names="$service_account" \
    bound_service_account_namespaces="$namespace" \
    audience="$audience" \
    token_policies="$policy" \
    token_no_default_policy=true \
    token_ttl="${TOKEN_TTL:-1h}" \
    token_max_ttl="${TOKEN_MAX_TTL:-24h}"
say "done: install the chart with vault.auth=kubernetes, vault.kubernetes.role=$role,"
say "      vault.kubernetes.mount=$mount and vault.kubernetes.audience=$audience"
