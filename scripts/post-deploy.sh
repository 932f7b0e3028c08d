#!/bin/sh
# After `azd deploy`: subscribe the Functions blob trigger to BlobCreated events of committed blobs in
# checkpoints/ and recipes/. The webhook needs the app's blobs_extension system key, which the Functions host
# creates the first time it starts with the Event Grid blob trigger loaded, so this cannot live in the Bicep.
# https://learn.microsoft.com/azure/azure-functions/functions-event-grid-blob-trigger
#
# Inputs (azd passes its environment to hooks): the outputs of infra/main.bicep below, and optionally
# KEY_ATTEMPTS / KEY_DELAY_SECONDS (how long to wait for the key: 30 x 10 s by default).
set -eu
: "${RESOURCE_GROUP:?}" "${AZURE_FUNCTION_APP_NAME:?}" "${AZURE_FUNCTION_APP_HOST_NAME:?}" "${EVENTGRID_SYSTEM_TOPIC_NAME:?}"
attempts=${KEY_ATTEMPTS:-30}
delay=${KEY_DELAY_SECONDS:-10}

key=""
i=1
while :; do
  # The listkeys call fails (or answers without the key) until the host has started once after the deploy.
  key=$(az functionapp keys list -g "$RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
          --query systemKeys.blobs_extension -o tsv 2>/dev/null || true)
  [ -n "$key" ] && break
  if [ "$i" -ge "$attempts" ]; then
    echo "post-deploy: the function app $AZURE_FUNCTION_APP_NAME has no blobs_extension system key after $attempts attempts." >&2
    echo "post-deploy: check that the deploy succeeded and the host starts (open https://$AZURE_FUNCTION_APP_HOST_NAME/ once)," >&2
    echo "post-deploy: then run 'azd hooks run postdeploy' again. No Event Grid subscription was created." >&2
    exit 1
  fi
  echo "post-deploy: waiting for the blobs_extension key (attempt $i of $attempts)"
  i=$((i + 1))
  sleep "$delay"
done

for pair in checkpoints:CheckpointDropped recipes:RecipeDropped; do
  container=${pair%%:*}; function=${pair#*:}
  endpoint="https://${AZURE_FUNCTION_APP_HOST_NAME}/runtime/webhooks/blobs?functionName=Host.Functions.${function}&code=${key}"
  az eventgrid system-topic event-subscription create \
    -g "$RESOURCE_GROUP" --system-topic-name "$EVENTGRID_SYSTEM_TOPIC_NAME" -n "cloudsoup-${container}" \
    --endpoint-type webhook --endpoint "$endpoint" \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "/blobServices/default/containers/${container}/" \
    --advanced-filter data.api stringin PutBlob PutBlockList CopyBlob FlushWithClose \
    --output none
done
echo "post-deploy: Event Grid subscriptions created for checkpoints/ and recipes/"
