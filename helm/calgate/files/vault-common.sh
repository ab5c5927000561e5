# Shared by vault-role-kubernetes.sh and vault-role-approle.sh (sourced, not run).
#
# Enables the KV v2 and Transit engines where missing, creates the transit key, and writes
# the policy in vault-policy.hcl with the mounts, prefix and key below substituted. Every
# step is idempotent: running a script again changes nothing that is already right.
#
# Environment, with defaults; keep them equal to the chart's config.CALGATE_VAULT_* values:
#   VAULT_CLI                    vault   (OpenBao: bao, which reads BAO_ADDR / BAO_TOKEN)
#   CALGATE_VAULT_KV_MOUNT       secret
#   CALGATE_VAULT_KV_PREFIX      calgate
#   CALGATE_VAULT_TRANSIT_MOUNT  transit
#   CALGATE_VAULT_TRANSIT_KEY    calgate-data-keys
#   CALGATE_VAULT_POLICY         calgate  (the policy's name)

cli="${VAULT_CLI:-vault}"
kv_mount="${CALGATE_VAULT_KV_MOUNT:-secret}"
kv_prefix="${CALGATE_VAULT_KV_PREFIX:-calgate}"
transit_mount="${CALGATE_VAULT_TRANSIT_MOUNT:-transit}"
transit_key="${CALGATE_VAULT_TRANSIT_KEY:-calgate-data-keys}"
policy="${CALGATE_VAULT_POLICY:-calgate}"
files="$(cd "$(dirname "$0")" && pwd)"

say() { printf '%s\n' "$*" >&2; }

# vault-policy.hcl names the default paths; substitute the configured ones.
render_policy() {
    sed -e "s#\"secret/data/calgate/#\"$kv_mount/data/$kv_prefix/#" \
        -e "s#\"secret/metadata/calgate/#\"$kv_mount/metadata/$kv_prefix/#" \
        -e "s#\"transit/datakey/plaintext/calgate-data-keys\"#\"$transit_mount/datakey/plaintext/$transit_key\"#" \
        -e "s#\"transit/decrypt/calgate-data-keys\"#\"$transit_mount/decrypt/$transit_key\"#" \
        -e "s#\"transit/keys/calgate-data-keys\"#\"$transit_mount/keys/$transit_key\"#" \
        "$files/vault-policy.hcl"
}

setup_engines_and_policy() {
    engines="$("$cli" secrets list -format=json)"
    case "$engines" in
        *"\"$kv_mount/\""*) say "kv: $kv_mount/ is mounted" ;;
        *) say "kv: enabling KV v2 at $kv_mount/"
           "$cli" secrets enable -path="$kv_mount" -version=2 kv ;;
    esac
    case "$engines" in
        *"\"$transit_mount/\""*) say "transit: $transit_mount/ is mounted" ;;
        *) say "transit: enabling Transit at $transit_mount/"
           "$cli" secrets enable -path="$transit_mount" transit ;;
    esac
    if "$cli" read -format=json "$transit_mount/keys/$transit_key" >/dev/null 2>&1; then
        say "transit: key $transit_key exists"
    else
        say "transit: creating key $transit_key"
        "$cli" write -f "$transit_mount/keys/$transit_key" >/dev/null
    fi
    say "policy: writing $policy"
    render_policy | "$cli" policy write "$policy" -
}

# enable_auth TYPE MOUNT: enable an auth method unless it is mounted already.
enable_auth() {
    case "$("$cli" auth list -format=json)" in
        *"\"$2/\""*) say "auth: $2/ is enabled" ;;
        *) say "auth: enabling $1 at $2/"
           "$cli" auth enable -path="$2" "$1" ;;
    esac
}
