#!/usr/bin/env bash
# Deploys infra/eventgrid.json: the Event Grid subscription of the blob trigger on_target_blob, and, when
# the app exports on push (output exportOnPush), infra/eventgrid-registry.json: the source registry's
# subscription of on_image_pushed.
#
#   infra/deploy-eventgrid.sh APP_RESOURCE_GROUP APP_DEPLOYMENT_NAME [extra --parameters for eventgrid.json...]
#
# Run it after `main.json` is deployed and the code is published: the webhooks need the blobs_extension
# and eventgrid_extension system keys, which exist only once the host has started with the code. The
# script reads the app deployment's outputs, waits for each key (never printing it) and deploys the
# templates (each unless it is there already with the same template and parameters: deploy-if-changed.sh).
# The keys themselves are read by listKeys() inside ARM.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
app_group=$1
app_deployment=$2
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
template="$here/eventgrid.json"
wait_seconds=${WAIT_SECONDS:-600}

output() {
  az deployment group show -g "$app_group" -n "$app_deployment" \
    --query "properties.outputs.$1.value" -o tsv
}

app=$(output functionAppName)
storage=$(output transferStorageAccountName)
storage_group=$(output transferStorageResourceGroup)
container=$(output targetContainer)
echo "function app $app; watched container $storage/$container (resource group $storage_group)"

wait_for_key() {  # $1: the system key, $2: the function that needs it
  local deadline=$((SECONDS + wait_seconds))
  until [[ "$(az functionapp keys list -g "$app_group" -n "$app" \
              --query "systemKeys.$1 != null" -o tsv 2>/dev/null || true)" == "true" ]]; do
    if ((SECONDS >= deadline)); then
      echo "error: $app has no $1 system key after ${wait_seconds}s: publish the code" \
           "(with $2) and let the host start, then run this again" >&2
      exit 1
    fi
    echo "waiting for the $1 key of $app (the host creates it when it starts)..."
    sleep 15
  done
}

if [[ "$(output exportOnPush | tr '[:upper:]' '[:lower:]')" == "true" ]]; then
  registry=$(output registryName)
  registry_group=$(output registryResourceGroup)
  echo "export on push: registry $registry (resource group $registry_group)"
  wait_for_key eventgrid_extension on_image_pushed
  "$here/deploy-if-changed.sh" "$registry_group" "${app}-eventgrid-pushes" \
    --template-file "$here/eventgrid-registry.json" \
    --parameters functionAppName="$app" functionAppResourceGroup="$app_group" registryName="$registry" \
                 deadLetterStorageAccountName="$(output storageAccountName)" \
                 deadLetterStorageResourceGroup="$app_group" \
    --query properties.outputs -o json
fi

wait_for_key blobs_extension on_target_blob

"$here/deploy-if-changed.sh" "$storage_group" "${app}-eventgrid" \
  --template-file "$template" \
  --parameters functionAppName="$app" functionAppResourceGroup="$app_group" \
               storageAccountName="$storage" targetContainer="$container" "$@" \
  --query properties.outputs -o json
