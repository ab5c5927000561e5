#!/bin/sh
# Prepare Vault (or OpenBao) for Calgate with the AppRole auth method (vault.auth=approle):
# engines, transit key and policy (vault-common.sh), then an AppRole role, and its role id
# and a new secret id written to files (mode 0600) for the Secret the chart reads
# (vault.approle.existingSecret). Run it again to issue a fresh secret id (rotation).
#
#   export VAULT_ADDR=https://vault.example:8200 VAULT_TOKEN=<an operator's token>
#   sh vault-role-approle.sh
#   kubectl -n calendar create secret generic calgate-vault-approle \
#       --from-file=role-id=calgate-approle/role-id --from-file=secret-id=calgate-approle/secret-id
#   rm -r calgate-approle
#
# Environment, with defaults (and those of vault-common.sh):
#   CALGATE_VAULT_APPROLE   calgate            the role's name (the auth method's mount is
#                                              approle/, where Calgate logs in)
#   OUT_DIR                 ./calgate-approle  where role-id and secret-id are written
#   TOKEN_TTL / TOKEN_MAX_TTL  1h / 24h        Calgate logs in again when its token expires
#   SECRET_ID_TTL           0                  0: the secret id never expires (rotate it by
#                                              running this script again)
#   BOUND_CIDRS             (unset)            e.g. the pod network, 10.244.0.0/16: the
#                                              secret id and tokens work only from there
set -eu
. "$(cd "$(dirname "$0")" && pwd)/vault-common.sh"

role="${CALGATE_VAULT_APPROLE:-calgate}"
out="${OUT_DIR:-./calgate-approle}"

setup_engines_and_policy
enable_auth approle approle
say "role: $role"
set -- token_policies="$policy" token_no_default_policy=true \
    token_ttl="${TOKEN_TTL:-1h}" token_max_ttl="${TOKEN_MAX_TTL:-24h}" \
    secret_id_ttl="${SECRET_ID_TTL:-0}"
if [ -n "${BOUND_CIDRS:-}" ]; then
    set -- "$@" secret_id_bound_cidrs="$BOUND_CIDRS" token_bound_cidrs="$BOUND_CIDRS"
fi
"$cli" write "auth/approle/role/$role" "$@"

umask 077
mkdir -p "$out"
"$cli" read -field=role_id "auth/approle/role/$role/role-id" >"$out/role-id"
"$cli" write -f -field=secret_id "auth/approle/role/$role/secret-id" >"$out/secret-id"
say "done: $out/role-id and $out/secret-id written; put them in a Secret:"
say "  kubectl -n NAMESPACE create secret generic calgate-vault-approle \\"
say "      --from-file=role-id=$out/role-id --from-file=secret-id=$out/secret-id"
say "then install the chart with vault.auth=approle and"
say "vault.approle.existingSecret=calgate-vault-approle, and delete $out."
