#!/usr/bin/env bash
# Deploys one side of the transfer into a resource group, from nothing or over a previous run of itself:
# the infrastructure (main.json), the app's code (make package), the Event Grid subscriptions (target and
# both; a source side with export on push), the role grants main.json leaves to the deployer, then health.
#
#   infra/deploy-side.sh source|target|both RESOURCE_GROUP [NAME=VALUE parameters for main.json...]
#
# Environment: LOCATION (westeurope) when the group is new; DEPLOYMENT (acrtransfer-SIDE), the name of the
# app's deployment; PARAMETERS (infra/main.SIDE.parameters.json); PUBLISH=print prints the publish command
# and the package instead of running it (nowhere to publish to, e.g. against the emulator); WAIT_SECONDS
# (600) for the host's key and health. A second run with the same inputs writes nothing: each deployment is
# skipped when ARM already has it with the same template and parameters (deploy-if-changed.sh), a package
# already published (its SHA-256 in the app's tag acrtransfer-package) is not sent again, and a grant that
# exists is not made again. It ends by listing what a person still has to grant.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if [[ $# -lt 2 || ! "$1" =~ ^(source|target|both)$ ]]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
side=$1
group=$2
shift 2
deployment=${DEPLOYMENT:-acrtransfer-$side}
parameters=${PARAMETERS:-$here/main.$side.parameters.json}
wait_seconds=${WAIT_SECONDS:-600}
publish=${PUBLISH:-az}
todo=()

step() { printf '\n== %s\n' "$*" >&2; }
output() {
  az deployment group show -g "$group" -n "$deployment" --query "properties.outputs.$1.value" -o tsv
}

step "resource group $group"
if az group show -n "$group" --output none 2>/dev/null; then
  echo "exists" >&2
else
  az group create -n "$group" -l "${LOCATION:-westeurope}" --output none
  echo "created in ${LOCATION:-westeurope}" >&2
fi

step "infrastructure: infra/main.json as deployment $deployment ($parameters)"
"$here/deploy-if-changed.sh" "$group" "$deployment" --template-file "$here/main.json" \
  --parameters "@$parameters" "$@" --output none
app=$(output functionAppName)
plan=$(output hostingPlan)
principal=$(output principalId)
echo "function app $app ($plan), identity $principal" >&2

step "code: the package of make package"
package=$root/dist/functionapp.zip
if [[ "$plan" == "FlexConsumption" ]]; then
  (cd "$root" && python3 infra/package.py --output "$package") >&2
  send=(az functionapp deployment source config-zip -g "$group" -n "$app" --src "$package" --build-remote true)
else
  (cd "$root" && python3 infra/package.py --with-dependencies --output "$package") >&2
  send=(az storage blob upload --auth-mode login --overwrite --blob-url "$(output packageBlobUrl)" --file "$package")
fi
sha=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$package")
published=$(az resource show --ids "$(output functionAppResourceId)" --query 'tags."acrtransfer-package"' -o tsv)
if [[ "$published" == "$sha" ]]; then
  echo "package $sha already published" >&2
elif [[ "$publish" == "print" ]]; then
  echo "would publish package $sha ($package) with: ${send[*]}" >&2
  todo+=("publish the code: ${send[*]}")
else
  "${send[@]}" --output none
  [[ "$plan" == "FlexConsumption" ]] || az functionapp restart -g "$group" -n "$app" --output none
  az resource tag --is-incremental --ids "$(output functionAppResourceId)" \
    --tags "acrtransfer-package=$sha" --output none
  echo "published package $sha" >&2
fi

if [[ "$side" != "source" || "$(output exportOnPush | tr '[:upper:]' '[:lower:]')" == "true" ]]; then
  step "Event Grid: the blob trigger's subscription, and the registry's with export on push (deploy-eventgrid.sh)"
  WAIT_SECONDS=$wait_seconds "$here/deploy-eventgrid.sh" "$group" "$deployment" >/dev/null
fi

step "role grants main.json left to the deployer (rolesToGrantYourself)"
grants=$(az deployment group show -g "$group" -n "$deployment" \
  --query 'properties.outputs.rolesToGrantYourself.value[].[role, scope]' -o tsv | tr -d '\r')
while IFS=$'\t' read -r role scope; do
  [[ -n "$role" ]] || continue
  if [[ -n "$(az role assignment list --scope "$scope" --role "$role" \
              --query "[?principalId=='$principal'].id" -o tsv 2>/dev/null)" ]]; then
    echo "$role on $scope: granted already" >&2
  elif az role assignment create --assignee-object-id "$principal" --assignee-principal-type ServicePrincipal \
         --role "$role" --scope "$scope" --output none 2>/dev/null; then
    echo "$role on $scope: granted" >&2
  else
    todo+=("$role on $scope for $principal (you may not grant it: az role assignment create --assignee-object-id $principal --assignee-principal-type ServicePrincipal --role '$role' --scope $scope)")
  fi
done <<< "$grants"

step "health"
host=$(output functionAppHostName)
if [[ "$publish" == "print" ]]; then
  echo "would check: curl https://$host/api/health?code=<the health function's key>" >&2
else
  deadline=$((SECONDS + wait_seconds))
  key=$(az functionapp function keys list -g "$group" -n "$app" --function-name health --query default -o tsv)
  until body=$(curl -fsS "https://$host/api/health?code=$key" 2>&1); do
    if ((SECONDS >= deadline)); then
      todo+=("health is not green after ${wait_seconds}s: $body")
      break
    fi
    sleep 15
  done
  echo "$body"
fi

step "still to do by a person"
todo+=(
  "the pipelines' own identities: python -m transfer pipelines deploy ... --wait prints what each needs (docs/deploy.md section 2)"
)
printf -- '- %s\n' "${todo[@]}"
