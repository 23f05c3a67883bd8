#!/usr/bin/env bash
# Deploys infra/eventgrid.json: the Event Grid subscription of the blob trigger on_target_blob.
#
#   infra/deploy-eventgrid.sh APP_RESOURCE_GROUP APP_DEPLOYMENT_NAME [extra --parameters for eventgrid.json...]
#
# Run it on the target side after `main.json` is deployed and the code is published: the webhook needs
# the blobs_extension system key, which exists only once the host has started with the code. The script
# reads the app deployment's outputs, waits for that key (never printing it) and deploys eventgrid.json
# into the watched storage account's resource group (unless it is there already with the same template and
# parameters: deploy-if-changed.sh). The key itself is read by listKeys() inside ARM.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
app_group=$1
app_deployment=$2
shift 2
template="$(cd "$(dirname "$0")" && pwd)/eventgrid.json"
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

deadline=$((SECONDS + wait_seconds))
until [[ "$(az functionapp keys list -g "$app_group" -n "$app" \
            --query 'systemKeys.blobs_extension != null' -o tsv 2>/dev/null || true)" == "true" ]]; do
  if ((SECONDS >= deadline)); then
    echo "error: $app has no blobs_extension system key after ${wait_seconds}s: publish the code" \
         "(with on_target_blob) and let the host start, then run this again" >&2
    exit 1
  fi
  echo "waiting for the blobs_extension key of $app (the host creates it when it starts)..."
  sleep 15
done

"$(dirname "$0")/deploy-if-changed.sh" "$storage_group" "${app}-eventgrid" \
  --template-file "$template" \
  --parameters functionAppName="$app" functionAppResourceGroup="$app_group" \
               storageAccountName="$storage" targetContainer="$container" "$@" \
  --query properties.outputs -o json
