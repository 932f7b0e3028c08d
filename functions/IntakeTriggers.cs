// Blob intake. Event Grid source (Flex Consumption supports only that; the polling trigger misses and
// delays blobs: docs/azure-notes.md §1). {name} also matches names in virtual folders
// ("exp/a.safetensors"); the full name is taken from the bound BlobClient. The container names here must
// match CloudSoup:CheckpointsContainer / CloudSoup:RecipesContainer (defaults "checkpoints", "recipes").
using Azure.Storage.Blobs;
using CloudSoup.Control.Intake;
using Microsoft.Azure.Functions.Worker;

namespace CloudSoup.Functions;

public sealed class IntakeTriggers(BlobIntake intake)
{
    [Function("CheckpointDropped")]
    public async Task CheckpointDropped(
        [BlobTrigger("checkpoints/{name}", Source = BlobTriggerSource.EventGrid, Connection = "CloudSoupStorage")] BlobClient blob,
        CancellationToken ct) =>
        await intake.OnBlobCreatedAsync(blob.BlobContainerName, blob.Name, ct);

    [Function("RecipeDropped")]
    public async Task RecipeDropped(
        [BlobTrigger("recipes/{name}", Source = BlobTriggerSource.EventGrid, Connection = "CloudSoupStorage")] BlobClient blob,
        CancellationToken ct) =>
        await intake.OnBlobCreatedAsync(blob.BlobContainerName, blob.Name, ct);
}
