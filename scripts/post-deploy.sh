#!/bin/sh
# After `azd deploy`: subscribe the Functions blob trigger to BlobCreated events of committed blobs in
# checkpoints/ and recipes/. It needs the app's blobs_extension system key, which exists only after the
# first deployment, so it cannot live in the Bicep.
set -eu
: "${RESOURCE_GROUP:?}" "${AZURE_FUNCTION_APP_NAME:?}" "${EVENTGRID_SYSTEM_TOPIC_NAME:?}"
key=$(az functionapp keys list -g "$RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" --query systemKeys.blobs_extension -o tsv)
for pair in checkpoints:CheckpointDropped recipes:RecipeDropped; do
  container=${pair%%:*}; function=${pair#*:}
  endpoint="https://${AZURE_FUNCTION_APP_NAME}.azurewebsites.net/runtime/webhooks/blobs?functionName=Host.Functions.${function}&code=${key}"
  az eventgrid system-topic event-subscription create \
    -g "$RESOURCE_GROUP" --system-topic-name "$EVENTGRID_SYSTEM_TOPIC_NAME" -n "cloudsoup-${container}" \
    --endpoint-type webhook --endpoint "$endpoint" \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "/blobServices/default/containers/${container}/" \
    --advanced-filter data.api stringin PutBlob PutBlockList CopyBlob FlushWithClose
done
echo "Event Grid subscriptions created for checkpoints/ and recipes/"
