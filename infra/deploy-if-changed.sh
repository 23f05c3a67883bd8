#!/usr/bin/env bash
# `az deployment group create`, unless the deployment of that name already succeeded with the same template
# and parameters: then nothing is written and its outputs are printed as create would print them.
#
#   infra/deploy-if-changed.sh RESOURCE_GROUP DEPLOYMENT_NAME [az deployment group create options...]
#
# ARM's validate (a POST that writes nothing) answers the templateHash and the parameters (defaults filled
# in) a deployment with these options would have; the existing deployment records both. Equal: skipped.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
group=$1
name=$2
shift 2
fingerprint='{hash: properties.templateHash, parameters: properties.parameters}'

normalized() {  # the same JSON, keys sorted, so two answers compare as text
  python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'
}

existing=""
if [[ "$(az deployment group show -g "$group" -n "$name" --query properties.provisioningState -o tsv \
         2>/dev/null || true)" == "Succeeded" ]]; then
  existing=$(az deployment group show -g "$group" -n "$name" --query "$fingerprint" -o json | normalized)
fi
if [[ -n "$existing" ]]; then
  wanted=$(az deployment group validate -g "$group" -n "$name" "$@" --query "$fingerprint" -o json | normalized)
  if [[ "$wanted" == "$existing" ]]; then
    echo "deployment $name in $group: unchanged (same template and parameters), nothing deployed" >&2
    shown=(--output none)  # what create would have printed: the options --query and --output given
    args=("$@")
    for ((i = 0; i + 1 < ${#args[@]}; i++)); do
      case ${args[i]} in
        --query) shown+=(--query "${args[i + 1]}") ;;
        -o | --output) shown+=(--output "${args[i + 1]}") ;;
      esac
    done
    az deployment group show -g "$group" -n "$name" "${shown[@]}"
    exit 0
  fi
fi
az deployment group create -g "$group" -n "$name" "$@"
